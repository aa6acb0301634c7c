"""NadamW as AlgoPerf's JAX baseline defines it (the init2winit variant).

With `g` the gradient and `t` the step counted from 1:

  m_t = b1 * m_{t-1} + (1 - b1) * g
  v_t = b2 * v_{t-1} + (1 - b2) * g^2
  m_hat = (b1 * m_t + (1 - b1) * g) / (1 - b1^t)
  v_hat = v_t / (1 - b2^t)
  u = -lr_t * (m_hat / (sqrt(v_hat + eps_root) + eps) + wd * p)

The Nesterov look-ahead is bias-corrected by `1 - b1^t`, as in Table 1 of
Choi et al., "On Empirical Comparisons of Optimizers for Deep Learning"
(arXiv 1910.05446); `optax.nadamw` corrects it by `1 - b1^(t+1)` instead, so it
is not a substitute. The weight decay is added before the learning rate and is
therefore multiplied by it.
"""

from typing import Any, Callable, NamedTuple, Optional, Union

import chex
import jax
import jax.numpy as jnp
import optax


class ScaleByNadamState(NamedTuple):
  """State of `scale_by_nadam`."""
  count: chex.Array  # Number of updates taken, int32 scalar.
  mu: optax.Updates  # First moment m_t.
  nu: optax.Updates  # Second moment v_t.


def scale_by_nadam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> optax.GradientTransformation:
  """Rescales updates by NAdam's bias-corrected look-ahead moments.

  `u = m_hat / (sqrt(v_hat + eps_root) + eps)` with `m_hat`, `v_hat` as in the
  module docstring.

  Args:
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to the denominator outside the square root.
    eps_root: added to the second moment inside the square root.

  Returns:
    An `optax.GradientTransformation`.
  """

  def init_fn(params):
    zeros = lambda p: jnp.zeros_like(p)
    return ScaleByNadamState(
        count=jnp.zeros([], jnp.int32),
        mu=jax.tree_util.tree_map(zeros, params),
        nu=jax.tree_util.tree_map(zeros, params))

  def update_fn(updates, state, params=None):
    del params
    count = state.count + 1
    mu = jax.tree_util.tree_map(
        lambda g, m: (1 - b1) * g + b1 * m, updates, state.mu)
    nu = jax.tree_util.tree_map(
        lambda g, v: (1 - b2) * g**2 + b2 * v, updates, state.nu)

    def rescale(g, m, v):
      look_ahead = (1 - b1) * g + b1 * m
      m_hat = look_ahead / (1 - b1**count).astype(m.dtype)
      v_hat = v / (1 - b2**count).astype(v.dtype)
      return m_hat / (jnp.sqrt(v_hat + eps_root) + eps)

    updates = jax.tree_util.tree_map(rescale, updates, mu, nu)
    return updates, ScaleByNadamState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)


def nadamw(
    learning_rate: Union[float, optax.Schedule],
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
    weight_decay_mask: Optional[Union[Any, Callable[[optax.Params], Any]]] = None,
) -> optax.GradientTransformation:
  """AlgoPerf's NadamW: `scale_by_nadam`, decoupled weight decay, learning rate.

  `u = -lr_t * (nadam(g) + weight_decay * p)`; see the module docstring.

  Args:
    learning_rate: a constant or an `optax.Schedule` of the step count.
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to the denominator outside the square root.
    eps_root: added to the second moment inside the square root.
    weight_decay: strength of the decay, multiplied by the learning rate.
    weight_decay_mask: as in `optax.add_decayed_weights`.

  Returns:
    An `optax.GradientTransformation`; its `update` needs `params`.

  Example:
    >>> opt = nadamw(learning_rate=1e-3, weight_decay=0.1)
    >>> params = {'w': jnp.ones(3)}
    >>> state = opt.init(params)
    >>> updates, state = opt.update({'w': jnp.ones(3)}, state, params)
  """
  return optax.chain(
      scale_by_nadam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
      optax.add_decayed_weights(weight_decay, weight_decay_mask),
      optax.scale_by_learning_rate(learning_rate),
  )

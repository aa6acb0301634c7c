"""A stand-in for `algoperf.spec` (v0.6): the same names with the same meaning."""

import abc
import enum
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import jax


class LossType(enum.Enum):
  SOFTMAX_CROSS_ENTROPY = 0
  SIGMOID_CROSS_ENTROPY = 1
  MEAN_SQUARED_ERROR = 2
  CTC_LOSS = 3
  MEAN_ABSOLUTE_ERROR = 4


class ForwardPassMode(enum.Enum):
  TRAIN = 0
  EVAL = 1


class ParameterType(enum.Enum):
  WEIGHT = 0
  BIAS = 1
  CONV_WEIGHT = 2
  BATCH_NORM_SCALE = 3
  BATCH_NORM_BIAS = 4
  LAYER_NORM_SCALE = 5
  LAYER_NORM_BIAS = 6
  EMBEDDING = 7
  ATTENTION_Q = 8
  ATTENTION_K = 9
  ATTENTION_V = 10
  ATTENTION_OUT = 11
  ATTENTION_QKV = 12
  ATTENTION_KV = 13
  ATTENTION_BIAS = 14


class ShapeTuple:
  """A shape that pytree utilities treat as a leaf."""

  def __init__(self, shape_tuple):
    self.shape_tuple = shape_tuple

  def __repr__(self):
    return f'ShapeTuple({self.shape_tuple})'

  def __eq__(self, other):
    return self.shape_tuple == other.shape_tuple


class TrainingCompleteError(Exception):
  """Raised by a submission that wants to end its run early."""


Tensor = Any
Shape = Union[Tuple[int, ...], ShapeTuple]
ParameterShapeTree = Dict[str, Any]
ParameterKey = str
ParameterContainer = Dict[ParameterKey, Any]
ParameterTypeTree = Dict[ParameterKey, Any]
RandomState = Any
OptimizerState = Union[Dict[str, Any], Tuple[Any, Any]]
Hyperparameters = Any
Timing = int
Steps = int
ModelAuxiliaryState = Any
ModelInitState = Tuple[ParameterContainer, ModelAuxiliaryState]
UpdateReturn = Tuple[OptimizerState, ParameterContainer, ModelAuxiliaryState]


class Workload(metaclass=abc.ABCMeta):
  """What a submission may know of a workload; abstract as in AlgoPerf."""

  def __init__(self, *args, **kwargs) -> None:
    del args, kwargs
    self._param_shapes: Optional[ParameterShapeTree] = None
    self._param_types: Optional[ParameterTypeTree] = None
    self._eval_iters: Dict[str, Iterator] = {}
    self.metrics_logger = None

  @property
  @abc.abstractmethod
  def target_metric_name(self) -> str:
    """The name of the target metric."""

  @abc.abstractmethod
  def has_reached_validation_target(self, eval_result: Dict[str, float]) -> bool:
    """Whether the validation target has been reached."""

  @abc.abstractmethod
  def has_reached_test_target(self, eval_result: Dict[str, float]) -> bool:
    """Whether the test target has been reached."""

  @abc.abstractmethod
  def _build_input_queue(self, data_rng: RandomState, split: str,
                         data_dir: str, global_batch_size: int,
                         cache: Optional[bool] = None,
                         repeat_final_dataset: Optional[bool] = None,
                         num_batches: Optional[int] = None
                         ) -> Iterator[Dict[str, Any]]:
    """An iterator over batches of `split` (not for submitters)."""

  def attach_metrics_logger(self, metrics_logger) -> None:
    self.metrics_logger = metrics_logger

  @property
  @abc.abstractmethod
  def validation_target_value(self) -> float:
    """The validation target value to reach."""

  @property
  @abc.abstractmethod
  def test_target_value(self) -> float:
    """The test target value to reach."""

  @property
  @abc.abstractmethod
  def loss_type(self) -> LossType:
    """The type of loss function."""

  @property
  @abc.abstractmethod
  def num_train_examples(self) -> int:
    """The size of the training set."""

  @property
  @abc.abstractmethod
  def eval_batch_size(self) -> int:
    """The batch size for evaluation."""

  @property
  @abc.abstractmethod
  def num_eval_train_examples(self) -> int:
    """The number of training examples to evaluate metrics on."""

  @property
  @abc.abstractmethod
  def num_validation_examples(self) -> int:
    """The size of the validation set."""

  @property
  @abc.abstractmethod
  def num_test_examples(self) -> int:
    """The size of the test set."""

  @property
  @abc.abstractmethod
  def train_mean(self) -> Any:
    """The mean of the training data."""

  @property
  @abc.abstractmethod
  def train_stddev(self) -> Any:
    """The stddev of the training data."""

  @property
  @abc.abstractmethod
  def max_allowed_runtime_sec(self) -> int:
    """The max allowed runtime of the workload in seconds."""

  @property
  @abc.abstractmethod
  def eval_period_time_sec(self) -> int:
    """The eval period of the workload in seconds."""

  @property
  @abc.abstractmethod
  def step_hint(self) -> int:
    """Approximate steps the baseline can take within the runtime budget."""

  @property
  def param_shapes(self):
    if self._param_shapes is None:
      raise ValueError(
          'workload.init_model_fn() must be called before '
          'workload.param_shapes.')
    return self._param_shapes

  @property
  def model_params_types(self):
    if self._param_types is None:
      raise ValueError(
          'workload.init_model_fn() must be called before '
          'workload.model_params_types.')
    return self._param_types

  @abc.abstractmethod
  def is_output_params(self, param_key: ParameterKey) -> bool:
    """Whether a key in the parameters is the output layer."""

  @abc.abstractmethod
  def init_model_fn(self, rng: RandomState) -> ModelInitState:
    """Return (initial_params, initial_model_state)."""

  @abc.abstractmethod
  def model_fn(self, params: ParameterContainer,
               augmented_and_preprocessed_input_batch: Dict[str, Tensor],
               model_state: ModelAuxiliaryState, mode: ForwardPassMode,
               rng: RandomState, update_batch_norm: bool,
               dropout_rate: float) -> Tuple[Tensor, ModelAuxiliaryState]:
    """Return (logits_batch, new_model_state)."""

  def output_activation_fn(self, logits_batch: Tensor,
                           framework: str) -> Tensor:
    """Turn logits into predictions, according to `loss_type`."""
    if framework != 'jax':
      raise ValueError(
          f'`framework` must be `jax` here (no PyTorch), got {framework}.')
    return {
        LossType.MEAN_SQUARED_ERROR: lambda z: z,
        LossType.MEAN_ABSOLUTE_ERROR: lambda z: z,
        LossType.SOFTMAX_CROSS_ENTROPY: jax.nn.softmax,
        LossType.SIGMOID_CROSS_ENTROPY: jax.nn.sigmoid,
        LossType.CTC_LOSS: jax.nn.softmax,
    }[self.loss_type](logits_batch)

  @abc.abstractmethod
  def loss_fn(self, label_batch, logits_batch, mask_batch=None,
              label_smoothing: float = 0.0) -> Dict[str, Tensor]:
    """Return {'summed', 'n_valid_examples', 'per_example'} (unregularised)."""

  @abc.abstractmethod
  def _eval_model_on_split(self, split: str, num_examples: int,
                           global_batch_size: int, params: ParameterContainer,
                           model_state: ModelAuxiliaryState, rng: RandomState,
                           data_dir: str, global_step: int = 0
                           ) -> Dict[str, float]:
    """Evaluate the model on one split, return final scalars."""

  def eval_model(self, global_batch_size: int, params: ParameterContainer,
                 model_state: ModelAuxiliaryState, rng: RandomState,
                 data_dir: str, imagenet_v2_data_dir: Optional[str],
                 global_step: int) -> Dict[str, float]:
    """Evaluate on eval_train, validation and (when it exists) test."""
    del imagenet_v2_data_dir
    metrics = {}
    for split, prefix, num_examples in (
        ('eval_train', 'train', self.num_eval_train_examples),
        ('validation', 'validation', self.num_validation_examples),
        ('test', 'test', self.num_test_examples)):
      if num_examples is None:
        continue
      try:
        split_metrics = self._eval_model_on_split(
            split, num_examples=num_examples,
            global_batch_size=global_batch_size, params=params,
            model_state=model_state, rng=rng, data_dir=data_dir,
            global_step=global_step)
      except NotImplementedError:
        if split == 'test':
          continue
        raise
      metrics.update({f'{prefix}/{k}': v for k, v in split_metrics.items()})
      if split != 'eval_train':
        metrics[f'{prefix}/num_examples'] = num_examples
    return metrics


InitOptimizerFn = Callable[..., OptimizerState]
UpdateParamsFn = Callable[..., UpdateReturn]
PrepareForEvalFn = Callable[..., UpdateReturn]
DataSelectionFn = Callable[..., Dict[str, Tensor]]

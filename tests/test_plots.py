"""The curve figures mark where each run first meets its target."""

import matplotlib.image

from localperf import plots
from scripts import run_local


def test_first_crossing_follows_the_metric_direction():
  assert plots.first_crossing([0.5, 0.7, 0.8, 0.9], 0.8, minimize=False) == 2
  assert plots.first_crossing([0.5, 0.4, 0.3], 0.35, minimize=True) == 2
  assert plots.first_crossing([0.5, 0.4], 0.3, minimize=True) is None


def test_finish_view_starts_before_the_first_crossing():
  plt = plots._pyplot()  # pylint: disable=protected-access
  fig, ax = plt.subplots()
  curves = {'a': ([100, 200, 300, 400], [0.5, 0.6, 0.8, 0.9]),
            'b': ([100, 200, 300, 400], [0.5, 0.7, 0.7, 0.85])}
  plots.plot_finish(ax, curves, 0.8, minimize=False, colors=['r', 'b'])
  # Earliest crossing at step 300 ('a'), so the view starts at 0.7 * 300.
  assert ax.get_xlim() == (210.0, 400.0)
  low, high = ax.get_ylim()
  assert low < 0.7 and high > 0.9  # The values shown, target included.
  plt.close(fig)


def test_run_local_figure_has_a_finish_row_per_workload(tmp_path):
  curve = [(s, 0.5 + s / 2000) for s in range(0, 1001, 100)]
  outcomes = {(w, 'nadamw'): [run_local.Outcome(800, 1.0, 1.0, curve)]
              for w in ('mnist1d', 'ctr_dlrm')}
  path = tmp_path / 'curves.png'
  run_local.plot_curves(outcomes, str(path))
  height, width, _ = matplotlib.image.imread(path).shape
  assert height > width / 2  # Two rows: whole run and finish.

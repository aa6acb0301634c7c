"""The figures: one colour per submission, crossings visible, step-shaped
profiles, axes that name what they show."""

import math

import matplotlib.image
import numpy as np

from localperf.lab import calibration
from localperf import plots
from localperf import scoring
from scripts import run_local


def _axes():
  plt = plots._pyplot()  # pylint: disable=protected-access
  return plt, *plt.subplots()


def test_first_crossing_follows_the_metric_direction():
  assert plots.first_crossing([0.5, 0.7, 0.8, 0.9], 0.8, minimize=False) == 2
  assert plots.first_crossing([0.5, 0.4, 0.3], 0.35, minimize=True) == 2
  assert plots.first_crossing([0.5, 0.4], 0.3, minimize=True) is None


def test_a_submission_keeps_its_colour_whatever_is_drawn_beside_it():
  names = ['nadamw', 'nadamw_ema', 'nadamw_lawa', 'nadamw_codesign',
           'schedule_free_adamw', 'baseline', 'shampoo']
  colors = [plots.submission_color(n) for n in names]
  assert colors == [plots.submission_color(n) for n in reversed(names)][::-1]
  assert len(set(colors[:5])) == 5  # The package's own are all distinct.
  assert plots.submission_color('baseline') in plots.OTHER_COLORS


def _finish(ax, order):
  curves = {'nadamw_lawa': [([100, 200, 300, 400], [0.5, 0.6, 0.8, 0.9])],
            'nadamw': [([100, 200, 300, 400], [0.5, 0.7, 0.7, 0.85])]}
  plots.plot_finish(ax, {n: curves[n] for n in order}, 0.8, minimize=False)
  return {line.get_label().split(':')[0]: line.get_color()
          for line in ax.get_lines() if line.get_label()[0] != '_'}


def test_finish_colours_and_legend_do_not_depend_on_order():
  plt, fig, ax = _axes()
  first = _finish(ax, ['nadamw_lawa', 'nadamw'])
  legend = [t.get_text() for t in ax.get_legend().get_texts()]
  plt.close(fig)
  plt, fig, ax = _axes()
  assert _finish(ax, ['nadamw', 'nadamw_lawa']) == first
  plt.close(fig)
  assert first['nadamw_lawa'] == plots.submission_color('nadamw_lawa')
  assert 'nadamw_lawa: met at 300' in legend
  assert 'nadamw: met at 400' in legend and 'target' in legend


def test_finish_view_starts_before_the_first_crossing_and_ends_past_the_last():
  plt, fig, ax = _axes()
  _finish(ax, ['nadamw_lawa', 'nadamw'])
  # Earliest crossing at step 300, so the view starts at 0.7 * 300; the one
  # at the last step, 400, stays inside.
  low_x, high_x = ax.get_xlim()
  assert low_x == 210.0 and high_x > 400
  low, high = ax.get_ylim()
  assert low < 0.7 and high > 0.9  # The values shown, target included.
  plt.close(fig)


def test_crossings_are_named_to_three_digits_or_more():
  assert [plots.number(x) for x in (35317.2, 29.12, 0.5, 0.0)] == [
      '35317', '29.1', '0.500', '0']


def test_rings_at_the_same_place_nest():
  assert plots.ring_sizes([300, 300, 301, 500], near=5) == [7, 12, 17, 7]


def _rings(ax):
  """(x, marker size) of every ring drawn on `ax`."""
  return sorted((float(line.get_xdata()[0]), line.get_markersize())
                for line in ax.get_lines()
                if line.get_marker() == 'o' and line.get_markerfacecolor()
                == 'none')


def test_finish_names_the_median_over_studies_and_rings_each_study():
  # Three studies: crossings at steps 300 and 400, and never; the median
  # over studies, an unsolved one counting as infinite, is 400 (the
  # scorer's); two studies cross at step 400 and their rings nest.
  curves = {'nadamw': [([100, 200, 300, 400], [0.5, 0.6, 0.8, 0.9]),
                       ([100, 200, 300, 400], [0.5, 0.6, 0.7, 0.85]),
                       ([100, 200, 300, 400], [0.5, 0.6, 0.7, 0.75])],
            'nadamw_ema': [([100, 200, 300, 400], [0.5, 0.6, 0.7, 0.82])]}
  plt, fig, ax = _axes()
  plots.plot_finish(ax, curves, 0.8, minimize=False)
  legend = [t.get_text() for t in ax.get_legend().get_texts()]
  assert legend[:2] == [
      'nadamw: median 400 over 3 studies (300-inf)',
      'nadamw_ema: met at 400']
  assert _rings(ax) == [(300.0, 7.0), (400.0, 7.0), (400.0, 12.0)]
  medians = [line for line in ax.get_lines()  # Vertical lines, axvline's.
             if list(line.get_ydata()) == [0, 1]]
  assert sorted(float(line.get_xdata()[0]) for line in medians) == [400, 400]
  # Two medians at one step: their dashes offset so that both show.
  # pylint: disable-next=protected-access
  offsets = {line._dash_pattern[0] for line in medians}
  assert len(offsets) == 2
  plt.close(fig)


def test_finish_legend_reads_as_the_tables_median_and_range():
  # As run_local's spread table: '1600 (1440-1760)', 'inf (1400-inf)'.
  assert plots.median_crossing([1440.0, 1760.0]) == (
      'median 1600 over 2 studies (1440-1760)')
  assert plots.median_crossing([1400.0, math.inf]) == (
      'median inf (not met) over 2 studies (1400-inf)')
  assert plots.median_crossing([300.0, 400.0, math.inf]) == (
      'median 400 over 3 studies (300-inf)')
  assert plots.median_crossing([math.inf, math.inf]) == 'not met in 2 studies'
  assert plots.median_crossing([math.inf]) == 'not met'


def test_finish_names_a_submission_whose_curves_end_left_of_the_view():
  # nadamw crosses at 1000, so the view starts at 700; shampoo's only curve
  # stopped at 300 (its budget spent): listed, and said to be out of view.
  plt, fig, ax = _axes()
  plots.plot_finish(ax, {'nadamw': [([500, 1000], [0.7, 0.9])],
                         'shampoo': [([100, 300], [0.5, 0.6])]},
                    0.8, minimize=False)
  legend = [t.get_text() for t in ax.get_legend().get_texts()]
  assert legend == ['nadamw: met at 1000',
                    'shampoo: not met; ends by 300, left of this view',
                    'target']
  plt.close(fig)


def test_a_curve_of_one_eval_shows_as_a_marker():
  plt, fig, ax = _axes()
  plots.plot_curves(ax, {'nadamw': [([100], [0.5])],
                         'shampoo': [([100, 200, 300], [0.5, 0.6, 0.7])]},
                    0.8, minimize=False)
  markers = {line.get_label(): line.get_marker() for line in ax.get_lines()}
  assert markers['nadamw (1)'] == 'o' and markers['shampoo (1)'] == 'None'
  plt.close(fig)


def _scores(time_column='score'):
  """Two submissions and workload 'w' of target accuracy >= 0.8."""
  return scoring.Scores(
      submissions=['nadamw', 'shampoo'], workloads=['w'],
      scored_workloads=['w'], time_column=time_column,
      targets={'w': scoring.Target('accuracy', 0.8, 400)},
      times=np.ones((2, 1)), ratios=np.ones((2, 1)),
      taus=np.linspace(1.0, 4.0, 7),
      profiles=np.array([[0.5, 0.5, 1, 1, 1, 1, 1],
                         [0.0, 0.5, 0.5, 0.5, 1, 1, 1]]),
      scores={'nadamw': 0.9, 'shampoo': 0.6})


def _kept_figures(monkeypatch):
  """pyplot, its figures left open after a plot function has saved them."""
  plt = plots._pyplot()  # pylint: disable=protected-access
  plt.close('all')
  monkeypatch.setattr(plt, 'close', lambda fig=None: None)
  return plt


def test_profiles_are_steps_shifted_apart_and_titled(tmp_path, monkeypatch):
  plt = _kept_figures(monkeypatch)
  plots.plot_performance_profiles(_scores(), tmp_path / 'profiles.png')
  ax = plt.gcf().axes[0]
  lines = {line.get_label().split(':')[0]: line for line in ax.get_lines()}
  # Drawn as the right-continuous step function rho(tau) is: every segment
  # flat or vertical, each value held from its tau to the next, shifted by
  # +-0.006 (the best up) so that lines coinciding at 1 both show.
  scores = _scores()
  for name, row, shift in (('nadamw', 0, 0.006), ('shampoo', 1, -0.006)):
    x, y = lines[name].get_path().vertices.T
    assert np.all((np.diff(x) == 0) | (np.diff(y) == 0))
    np.testing.assert_array_equal(x[1::2], scores.taus[1:])
    np.testing.assert_allclose(y[1::2], scores.profiles[row][:-1] + shift)
  assert (lines['nadamw'].get_linewidth() ==
          lines['shampoo'].get_linewidth())  # Width says nothing.
  legend = [t.get_text() for t in ax.get_legend().get_texts()]
  assert legend == ['nadamw: 0.9000, rho(4) = 1.00',
                    'shampoo: 0.6000, rho(4) = 1.00']
  assert ax.get_legend().get_title().get_text().startswith('benchmark score')
  assert ax.get_title() == ('Performance profiles: submission time to the '
                            'target on 1 workload, each the median over '
                            'studies')
  assert any('shifted vertically 0.012' in t.get_text()
             for t in plt.gcf().texts)
  assert ax.get_ylim()[0] < -0.006  # The lowest line clears the axis.
  assert '`' not in ax.get_xlabel() and 'submission time' in ax.get_xlabel()
  assert lines['shampoo'].get_color() == plots.submission_color('shampoo')
  plt.close('all')


def test_profiles_title_leads_with_the_callers(tmp_path, monkeypatch):
  plt = _kept_figures(monkeypatch)
  plots.plot_performance_profiles(_scores('global_step'),
                                  tmp_path / 'profiles.png',
                                  title='PROJECTION, not a measurement')
  title = plt.gcf().axes[0].get_title()
  assert title.startswith('PROJECTION, not a measurement\n')
  assert 'steps to the target' in title
  plt.close('all')


def test_validation_curves_name_time_and_metric_on_both_panels(
    tmp_path, monkeypatch):
  plt = _kept_figures(monkeypatch)
  def trial(scale):
    return scoring.Trial({
        'score': np.array([10.0, 20, 30]) * scale,
        'global_step': np.array([100, 200, 300]),
        'validation/accuracy': np.array([0.5, 0.7, 0.85])})
  # nadamw's two studies meet the target at 30 and 60 s: the scorer's
  # median is 45 s, as the finish's legend must say.
  logs = {'shampoo': {'w': {'study_0': [trial(1)]}},
          'nadamw': {'w': {'study_0': [trial(1), trial(3)],
                           'study_1': [trial(2)]}}}
  scores = _scores()
  plots.plot_validation_curves(logs, scores, tmp_path)
  whole, finish = plt.gcf().axes
  for ax in (whole, finish):
    assert ax.get_xlabel() == 'submission time (s)'
    assert ax.get_ylabel() == 'validation/accuracy'
    assert ax.get_legend() is not None
  for ax in (whole, finish):
    colors = {line.get_label().split(' ')[0].rstrip(':'): line.get_color()
              for line in ax.get_lines()}
    assert colors['nadamw'] == plots.submission_color('nadamw')
  whole_legend = [t.get_text() for t in whole.get_legend().get_texts()]
  assert whole_legend[:2] == ['shampoo (1)', 'nadamw (3)']  # Trials drawn.
  legend = [t.get_text() for t in finish.get_legend().get_texts()]
  assert 'nadamw: median 45.0 over 2 studies (30.0-60.0)' in legend
  assert 'shampoo: met at 30.0' in legend
  assert finish.get_xlim()[1] > 60  # The crossing at the last eval shows.
  assert 'each study' in finish.get_title()
  plt.close('all')


def test_run_local_figure_has_a_finish_row_with_a_legend(tmp_path,
                                                        monkeypatch):
  plt = _kept_figures(monkeypatch)
  curve = [(s, 0.5 + s / 2000) for s in range(0, 1001, 100)]
  outcomes = {(w, s): [run_local.Outcome(800, 1.0, 1.0, curve)]
              for w in ('mnist1d', 'ctr_dlrm')
              for s in ('schedule_free_adamw', 'nadamw')}
  path = tmp_path / 'curves.png'
  run_local.plot_curves(outcomes, str(path))
  height, width, _ = matplotlib.image.imread(path).shape
  assert height > width / 2  # Two rows: whole run and finish.
  axes = plt.gcf().axes
  finish = axes[2]  # Below mnist1d's whole run.
  assert finish.get_legend() is not None
  assert finish.get_ylabel() == 'validation/accuracy'
  for ax in axes[:2] + axes[2:]:
    for line in ax.get_lines():
      name = line.get_label().split(' ')[0]
      if name in ('nadamw', 'schedule_free_adamw'):
        assert line.get_color() == plots.submission_color(name)
  plt.close('all')


def test_calibration_limits_show_the_finish_with_a_margin():
  values = np.array([1.0, 0.6, 0.45, 0.41, 0.40])  # A loss, falling.
  low, high = calibration.value_limits(values, 0.42, minimize=True)
  assert low < 0.40 - 0.01 and 0.45 <= high < 1.0
  low, high = calibration.value_limits(1 - values, 0.58, minimize=False)
  assert high > 0.60 + 0.01 and 0.0 < low <= 0.55


def test_calibration_figure_names_the_metric_and_labels_r2(tmp_path,
                                                           monkeypatch):
  plt = _kept_figures(monkeypatch)
  steps = np.arange(0, 3001, 300)
  curve = calibration.Curve(steps, 0.5 - steps / 10000)
  run = calibration.Run({'raw': curve, 'ema': curve, 'lawa': curve}, 1.0, 1.0)
  report = calibration.Report('ctr_dlrm', 4, 3000, 0.3, [], run,
                              calibration.Run({'raw': curve}, 1.0, 1.0),
                              (0, 1), [curve, curve], [])
  calibration.plot(report, tmp_path / 'ctr_dlrm.png')
  whole, finish = plt.gcf().axes
  for ax in (whole, finish):
    assert ax.get_ylabel() == 'validation loss'
    assert ax.get_xlabel() == 'step (step_hint 3000)'
    assert {t.get_text().strip() for t in ax.texts} == {'50%', '70%'}
  # The whole run shows the first eval (0.5); the finish zooms past it.
  assert whole.get_ylim()[0] <= 0.2 and whole.get_ylim()[1] >= 0.5
  assert finish.get_xlim()[0] == 0.4 * 3000
  colors = {line.get_label(): line.get_color() for line in whole.get_lines()}
  assert colors['ema, seed 0'] == plots.submission_color('nadamw_ema')
  assert {'raw, seed 1', 'constant LR, seed 0', 'target 0.3'} <= set(colors)
  plt.close('all')

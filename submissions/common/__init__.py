"""AlgoPerf plumbing shared by every submission in this package.

One module per concern, each importing only those before it:
`hyperparameters` (the rules a trial's values must meet), `train_step` (the
jitted step, its shardings, `TrainState`), `eval_params` (raw, averaged or
selected weights), `host_lawa` (LAWA's queue in host memory) and `api`
(AlgoPerf's submission functions). Here are the names the submissions use.
"""

from submissions.common.api import BATCH_SIZES
from submissions.common.api import data_selection
from submissions.common.api import get_batch_size
from submissions.common.api import init_optimizer_state
from submissions.common.api import prepare_for_eval
from submissions.common.api import update_params
from submissions.common.eval_params import averaged_params
from submissions.common.host_lawa import HostLawa
from submissions.common.hyperparameters import averaging_start_step
from submissions.common.hyperparameters import check_hyperparameters
from submissions.common.hyperparameters import OPTIONAL_HYPERPARAMETERS
from submissions.common.hyperparameters import read_hyperparameters
from submissions.common.train_step import make_batch_loss
from submissions.common.train_step import spec
from submissions.common.train_step import TrainState

"""NadamW, weight averaging and schedules as Optax transformations.

Pure JAX/Optax: nothing here knows about AlgoPerf.
"""

from submissions.optim.averaging import average_of
from submissions.optim.averaging import AveragingState
from submissions.optim.averaging import averaged_params
from submissions.optim.averaging import ema_params
from submissions.optim.averaging import EmaParamsState
from submissions.optim.averaging import find_averaging_state
from submissions.optim.averaging import is_average_ready
from submissions.optim.averaging import lawa_host_count
from submissions.optim.averaging import lawa_host_init
from submissions.optim.averaging import lawa_host_push
from submissions.optim.averaging import lawa_host_takes_snapshot
from submissions.optim.averaging import lawa_params
from submissions.optim.averaging import LawaHostState
from submissions.optim.averaging import LawaParamsState
from submissions.optim.averaging import lr_following_ema_decay
from submissions.optim.nadamw import nadamw
from submissions.optim.nadamw import scale_by_nadam
from submissions.optim.nadamw import ScaleByNadamState
from submissions.optim.schedules import warmup_constant
from submissions.optim.schedules import warmup_cosine_decay
from submissions.optim.schedules import warmup_stable_decay

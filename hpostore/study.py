"""Where ``hpostore.study`` imports still land: the fold lives in :mod:`hpostore.log.fold`."""

from .log.fold import REPLAY_COLUMNS, StudyState, replay, replay_table
from .log.trial import UNFINISHED, WITH_RESULT, Call, TrialState, TrialStatus

__all__ = [
    "REPLAY_COLUMNS",
    "UNFINISHED",
    "WITH_RESULT",
    "Call",
    "StudyState",
    "TrialState",
    "TrialStatus",
    "replay",
    "replay_table",
]

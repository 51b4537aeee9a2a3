"""Ending a worker at once when a pipeline cannot process a record it has to process.

Failures come in two kinds, and only the second ends the worker:

- the record's fault (not JSON, not the contract, a key other than its entity, a value the
  rules reject or fail on, too large to forward): the pipeline dead-letters it and goes on,
  since a restart would only meet it again and no single record may stop a pipeline;
- the infrastructure's fault (state that cannot be written, an output or dead letter that
  cannot be sent): the worker stops here without committing, and a restarted one handles
  the record again.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

log = logging.getLogger(__name__)

FAIL_STOP_EXIT_CODE = 70
"""EX_SOFTWARE: the worker stopped itself so that the record being processed is redone."""


def fail_stop(pipeline: str, exc: BaseException) -> NoReturn:
    """Log why and end the process now, without a graceful (committing) shutdown.

    faust-streaming 0.15 acknowledges a record whose processing raised (the stream acks in a
    ``finally`` around its ``yield``; ``stream_ack_exceptions`` is not read), and a graceful
    stop commits acknowledged offsets: the record would be skipped. Exiting before the next
    ``await`` leaves it unacknowledged and uncommitted, exactly like the SIGKILL the crash
    tests prove safe, so a restarted worker processes it again.
    """
    log.critical(
        "%s pipeline cannot process a record and stops the worker without committing"
        " it; a restarted worker processes it again: %r",
        pipeline,
        exc,
        exc_info=exc,
    )
    logging.shutdown()
    sys.stderr.flush()
    os._exit(FAIL_STOP_EXIT_CODE)

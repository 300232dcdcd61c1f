"""The searcher interface (textbook ``HPOSearcher``) and seeded per-trial randomness."""

from __future__ import annotations

import hashlib
import secrets
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._hyper import HyperParameters
from ..errors import InvalidArgument, StudyMismatch

if TYPE_CHECKING:
    from ..study import StudyState

_UPDATE_CALL = 1  # StudyState.calls holds (0 = suggest | 1 = update, trial)


def check_seed(seed: Any) -> int | None:
    """``seed`` as a non-negative int (or None); raises :class:`InvalidArgument` otherwise."""
    if seed is None:
        return None
    if isinstance(seed, np.integer):
        seed = int(seed)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InvalidArgument(f"seed must be a non-negative int or None, got {seed!r}")
    return seed


#: a 64-byte digest as eight little-endian 64-bit words
_EIGHT_WORDS = struct.Struct("<8Q")


def trial_uniforms(seed: int, index: int, n: int) -> list[float]:
    """``n`` uniforms in (0, 1) for sample ``index`` of a searcher seeded with ``seed``.

    Counter-based (BLAKE2b of ``seed:index:block``): no hidden RNG stream to restore, any index
    computable on its own (resume, parallel workers), and ~1 µs instead of the ~40 µs it takes
    to seed a numpy Generator.
    """
    out: list[float] = []
    block = 0
    while len(out) < n:
        digest = hashlib.blake2b(b"%d:%d:%d" % (seed, index, block), digest_size=64).digest()
        for w in _EIGHT_WORDS.unpack(digest)[: n - len(out)]:  # a loop: no comprehension frame
            out.append(((w >> 11) + 0.5) / 9007199254740992.0)
        block += 1
    return out


def trial_rng(seed: int, index: int) -> np.random.Generator:
    """A numpy Generator for sample ``index``: ``default_rng([seed, index])`` (DESIGN.md)."""
    return np.random.default_rng([seed, index])


class HPOSearcher(HyperParameters):
    """Proposes configurations (textbook API).

    Subclasses implement :meth:`sample_configuration` and may implement :meth:`update`, in the
    class body or afterwards with ``@add_to_class`` (the textbook's way, which is why this is
    not an ABC: unimplemented methods raise ``NotImplementedError`` as in the textbook).

    Resume has one contract, :meth:`restore_results`: rebuild from how many proposals were
    made and the results fed back, in one pass. :meth:`restore` feeds it the fold's FIFO
    history (one proposal per trial, one result per ``update`` event); a scheduler that feeds
    its searcher differently (multi-fidelity) calls :meth:`restore_results` with its own. A
    searcher without it (:meth:`restorable` is False) is resumed by re-executing its calls
    and checking each proposal against the log.
    """

    def sample_configuration(self) -> dict[str, Any]:
        """The next configuration to evaluate."""
        raise NotImplementedError(f"{type(self).__name__} defines no sample_configuration()")

    def update(self, config: dict[str, Any], error: float, additional_info: Any = None) -> None:
        """Observe the error of ``config`` (default: nothing to learn)."""

    def bind_seed(self, seed: int) -> None:
        """Adopt the study's logged seed (built-in searchers); default: no seed used."""

    def restorable(self) -> bool:
        """Whether :meth:`restore_results` rebuilds this searcher (else it is re-executed)."""
        return type(self).restore_results is not HPOSearcher.restore_results

    def restore(self, state: StudyState) -> None:
        """Rebuild from the fold under FIFO: :meth:`restore_results` of
        :func:`fifo_history`; ``NotImplementedError`` means re-execute."""
        if not self.restorable():
            raise NotImplementedError
        self.restore_results(*fifo_history(state))

    def restore_results(
        self,
        n_sampled: int,
        results: Iterable[tuple[dict[str, Any], float, Any]],
        pending: Iterable[dict[str, Any]] = (),
    ) -> None:
        """Rebuild from what a scheduler fed this searcher, in one pass.

        ``n_sampled`` is how many times :meth:`sample_configuration` was called, ``results`` the
        ``(config, error, additional_info)`` of each :meth:`update` call in order, ``pending``
        the sampled configs without a result yet, in the order they were sampled. A scheduler
        that calls the searcher differently from FIFO (one sample per trial, one update per
        finished trial) rebuilds its searcher with this instead of :meth:`restore`.
        ``NotImplementedError`` means re-execute.
        """
        raise NotImplementedError


def fifo_history(
    state: StudyState,
) -> tuple[int, list[tuple[dict[str, Any], float, Any]], list[dict[str, Any]]]:
    """What a FIFO scheduler fed its searcher, read from the fold: the number of proposals
    (one per trial), the ``(config, error, None)`` of each ``update`` event in log order, and
    the configs of the trials without one, in trial order (the arguments of
    :meth:`HPOSearcher.restore_results`)."""
    results: list[tuple[dict[str, Any], float, Any]] = []
    for code, trial in state.calls:
        t = state.trials[trial]
        if code == _UPDATE_CALL and t.error is not None:
            results.append((t.config, t.error, None))
    pending = [t.config for _, t in sorted(state.trials.items()) if not t.updated]
    return len(state.trials), results, pending


class SeededSearcher(HPOSearcher):
    """A built-in searcher whose randomness comes from one seed, logged by the study.

    ``seed=None`` draws a seed on first use (the study logs it); a resume binds the logged one,
    and an explicit seed that differs from the log is refused.
    """

    seed: int | None

    def bind_seed(self, seed: int) -> None:
        if self.seed is None:
            self.seed = seed
        elif self.seed != seed:
            name = type(self).__name__
            raise StudyMismatch(
                f"{name}(seed={self.seed}) cannot continue a study that was started with "
                f"seed={seed}; pass seed={seed} (or seed=None) to resume it, or use a new study name"
            )
        self._hparams["seed"] = self.seed

    def _bound_seed(self) -> int:
        """The seed, drawn now (and logged by the study) if none was given or bound yet."""
        if self.seed is None:
            self.bind_seed(secrets.randbits(63))
        assert self.seed is not None
        return self.seed


class IndexedSearcher(SeededSearcher):
    """A seeded searcher whose proposal ``k`` depends on ``(seed, k)`` only (random, grid):
    its whole state is how many it proposed, so resume just sets that count."""

    _n_sampled: int

    def _proposes_by_index(self) -> bool:
        """False when a subclass changed how proposals are made (then it is re-executed)."""
        raise NotImplementedError

    def restorable(self) -> bool:
        return self._proposes_by_index()

    def restore(self, state: StudyState) -> None:
        """Under FIFO the state is one proposal per trial: no need to decode every result."""
        if not self._proposes_by_index():
            raise NotImplementedError
        self._n_sampled = len(state.trials)

    def restore_results(
        self,
        n_sampled: int,
        results: Iterable[tuple[dict[str, Any], float, Any]],
        pending: Iterable[dict[str, Any]] = (),
    ) -> None:
        if not self._proposes_by_index():
            raise NotImplementedError  # a subclass may propose differently: re-execute it
        self._n_sampled = n_sampled

"""The ``[events]`` table: queue sizes, sampling, batching, retries and degradation thresholds.

The defaults are those of seeds/003 (Phase 1-A): P0 bounded at 100, P1 a ring
of 10,000, P2 a collapsing queue of 1,000, P3 up to 50,000.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from qts_data.plugins.registry import Settings


class EventSettings(Settings):
    """How the event dispatcher queues, delivers and degrades."""

    p0_capacity: int = Field(
        default=100, ge=1, description="P0 queue size per sink; a full queue blocks the publisher"
    )
    p1_capacity: int = Field(
        default=10_000, ge=1, description="P1 ring size per sink; a full ring drops its oldest"
    )
    p2_capacity: int = Field(
        default=1_000,
        ge=1,
        description="P2 queue size per sink; same-key events collapse, a full queue drops its oldest",
    )
    p3_capacity: int = Field(
        default=50_000, ge=1, description="P3 queue size per sink; sampled above p3_sample_from"
    )
    p3_sample_from: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="P3 fill ratio from which only one incoming event in p3_keep_one_in is kept",
    )
    p3_keep_one_in: int = Field(default=10, ge=1, description="the sampling rate under pressure")
    batch_max: int = Field(
        default=256, ge=1, description="most events per deliver() call for P1-P3 (P0 takes all)"
    )
    deliver_timeout_s: float | None = Field(
        default=5.0,
        gt=0,
        description="a deliver() call taking longer is a failure (None: no limit)",
    )
    retry_attempts: int = Field(
        default=3, ge=0, description="retries of a failed batch before it is given up"
    )
    retry_backoff_s: float = Field(
        default=0.05, ge=0, description="first retry delay, doubled each time"
    )
    retry_backoff_max_s: float = Field(default=1.0, ge=0, description="longest retry delay")
    degrade_enter: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="a P0/P1/P2 queue this full degrades the level (P0: CRITICAL_ONLY, P1: P2_P3_PAUSED, P2: P3_PAUSED)",
    )
    degrade_leave: float = Field(
        default=0.5, ge=0, lt=1, description="the pressure ends when the queue is back to this fill"
    )
    drain_timeout_s: float = Field(
        default=5.0, ge=0, description="how long stop() delivers what is queued before giving up"
    )
    emit_level_changes: bool = Field(
        default=True, description="publish every degradation level change as a P1 event"
    )

    @model_validator(mode="after")
    def _leave_below_enter(self) -> EventSettings:
        if self.degrade_leave >= self.degrade_enter:
            raise ValueError(
                f"degrade_leave ({self.degrade_leave}) must be below degrade_enter "
                f"({self.degrade_enter}), or the level would flap"
            )
        return self

    def capacity(self, priority: int) -> int:
        """The queue size of ``priority`` (0-3)."""
        return (self.p0_capacity, self.p1_capacity, self.p2_capacity, self.p3_capacity)[priority]

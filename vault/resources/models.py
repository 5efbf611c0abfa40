"""The resource request of a submission, sealed field by field."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from vault.db import Base, UTCDateTime, utcnow


class ResourceRequest(Base):
    """What a consortium asks for: GPUs, a data purchase budget and talent support.

    The request reveals a consortium's plans, so each field is sealed (AES-256-GCM, associated
    data = table, column and submission id); totals are computed after opening.
    """

    __tablename__ = "resource_requests"

    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), primary_key=True)
    #: Sealed GPU model id of the programme's form, e.g. ``b200``.
    gpu_model_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: Sealed decimal count of GPUs.
    gpu_count_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: Sealed decimal data purchase budget in won.
    data_budget_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: Sealed decimal talent support headcount.
    talent_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"))

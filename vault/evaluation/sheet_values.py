"""What a score sheet holds, apart from its life cycle: which stages take scores or a vote, the
checks on the values a reviewer sends, and their sealing (``SheetCipher``).

Scores, votes and comments never go into error messages: errors name criteria and ranges only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import cast

from vault.crypto import FieldCipher
from vault.evaluation.errors import (
    CommentTooLong,
    InvalidVote,
    OverallCommentTooLong,
    ScoreOutOfRange,
    ScoresNotAccepted,
    UnknownCriterion,
    VoteNotAccepted,
)
from vault.evaluation.models import VOTE_KEY
from vault.programmes.definition import Stage

#: The longest comment (per criterion, and overall) and reopen reason, in characters.
MAX_COMMENT = 4000
#: How a vote is spelled in the sealed JSON.
_VOTES = {True: "accept", False: "reject"}


def takes_scores(stage: Stage) -> bool:
    """Whether the stage's sheets score its criteria."""
    return stage.scoring is not None and bool(stage.criteria)


def takes_vote(stage: Stage) -> bool:
    """Whether the stage's sheets hold a vote: the stage is decided by a panel majority."""
    return stage.decision is not None and stage.decision.rule == "majority"


def validate(stage: Stage, scores: Mapping[str, object], comments: Mapping[str, object],
             overall_comment: object, vote: object) -> tuple[dict[str, int], dict[str, str]]:
    """The scores and the non-empty comments, checked against the stage (and the vote)."""
    if vote is not None and not takes_vote(stage):
        raise VoteNotAccepted(stage=stage.id)
    if vote is not None and not isinstance(vote, bool):
        raise InvalidVote()
    if scores and not takes_scores(stage):
        raise ScoresNotAccepted(stage=stage.id)
    known = {criterion.id for criterion in stage.criteria}
    scale = stage.scoring.scale if stage.scoring is not None else None
    for criterion_id in (*scores, *comments):
        if criterion_id not in known:
            raise UnknownCriterion(stage.id, str(criterion_id)[:64])
    for criterion_id, score in scores.items():
        if scale is None or score not in scale:
            raise ScoreOutOfRange(criterion_id, scale.minimum if scale else 0,
                                  scale.maximum if scale else 0)
    for criterion_id, comment in comments.items():
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise CommentTooLong(criterion_id, MAX_COMMENT)
    if not isinstance(overall_comment, str) or len(overall_comment) > MAX_COMMENT:
        raise OverallCommentTooLong(limit=MAX_COMMENT)
    # Every score passed ``score in scale``: a whole number (not a bool) on the scale.
    return ({criterion_id: cast(int, score) for criterion_id, score in scores.items()},
            {criterion_id: text for criterion_id, text in comments.items()
             if isinstance(text, str) and text.strip()})


class SheetCipher:
    """Seals and opens a sheet's (or a revision's) scores, vote and comments: canonical JSON
    under the field cipher, bound to the table, column and row id."""

    def __init__(self, cipher: FieldCipher) -> None:
        self.cipher = cipher

    def seal_scores(self, table: str, row_id: uuid.UUID, scores: Mapping[str, int],
                     vote: bool | None = None) -> bytes:
        # The vote lives in the scores column ({"vote": "accept"}): a text value, where
        # scores are whole numbers, so the two never read as each other.
        values: dict[str, object] = dict(scores)
        if vote is not None:
            values[VOTE_KEY] = _VOTES[vote]
        return self.cipher.seal(table, "scores", row_id, canonical(values))

    def seal_comments(self, table: str, row_id: uuid.UUID, comments: Mapping[str, str],
                       overall: str) -> bytes:
        text = canonical({"criteria": dict(comments), "overall": overall})
        return self.cipher.seal(table, "comments", row_id, text)

    def open_scores(self, table: str, row_id: uuid.UUID,
                     sealed: bytes) -> tuple[dict[str, int], bool | None]:
        """The scores and the vote (``None``: not cast)."""
        scores: dict[str, int] = {}
        vote = None
        for key, value in json.loads(self.cipher.open(table, "scores", row_id, sealed)).items():
            if key == VOTE_KEY and isinstance(value, str):
                vote = {spelled: cast for cast, spelled in _VOTES.items()}[value]
            else:
                scores[key] = int(value)
        return scores, vote

    def open_comments(self, table: str, row_id: uuid.UUID,
                       sealed: bytes) -> tuple[dict[str, str], str]:
        data = json.loads(self.cipher.open(table, "comments", row_id, sealed))
        return dict(data["criteria"]), data["overall"]


def canonical(value: object) -> str:
    """Sorted keys, no spaces, UTF-8 text: one spelling per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def ordered(values: Mapping[str, object], order: list[str]) -> dict:
    """``values`` in the stage's criterion order (unknown keys last, sorted)."""
    rank = {criterion_id: index for index, criterion_id in enumerate(order)}
    return {key: values[key] for key in sorted(values, key=lambda k: (rank.get(k, len(rank)), k))}

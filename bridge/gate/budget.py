"""Response budgets: what one answer may weigh (``--max-response-bytes``), and a batch's
answers together.

A single call's budget is the setting itself: a lease or list answer stays under it
(v1 and v2beta2 alike). A batch shares one budget among its parts (`Budget`): a part
reserves the most its answer can weigh before it runs, and is charged what its answer
actually weighed once it has; a part whose reservation does not fit what is left is
answered with `ResponseTooLarge` without running. The batch's own rules are in
`bridge.taskqueue.batch`.
"""

from __future__ import annotations

from backends.errors import InvalidArgument

#: Where a batch part's environ carries the batch's budget.
KEY = "bridge.budget"
#: The most a part's answer weighs besides its resource: status line, headers, the
#: multipart framing around it, or a whole error envelope.
PART_BYTES = 4096


class ResponseTooLarge(InvalidArgument):
    """A call not run because its answer could not fit what is left of the response budget."""

    reason = "responseTooLarge"


class Budget:
    """What is left of a batch's response budget, in bytes (its parts run one after the
    other, in the batch's thread)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total

    def reserve(self, worst: int, what: str) -> int:
        """Check that an answer of up to ``worst`` bytes fits; return what is left (the
        most the answer may weigh). ResponseTooLarge when it does not fit: the call is
        then not run."""
        if worst > self.left:
            raise ResponseTooLarge(
                f"Not run: this batch's answers have used its response budget (--max-response-bytes, "
                f"{self.total} bytes), and {what} could answer up to {worst} bytes where {self.left} are left; "
                "send it in another batch"
            )
        return self.left

    def charge(self, used: int) -> None:
        """Count an answer's actual weight."""
        self.left -= used

    def release(self, amount: int) -> None:
        """Give back bytes set aside earlier (a part's room for its refusal, once it runs)."""
        self.left += amount

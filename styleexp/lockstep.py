"""Per-element optimisers on the rows of one batch of images, stepped together so that one network pass answers them
all."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence

import torch


class _Abort(Exception):
    """Raised inside an element's closure when the batch's evaluation failed: its step ends there."""


_STEP, _ABORT, _CLOSE = "step", "abort", "close"


class _Element:
    """One row's optimiser, stepping in a thread of its own and pausing whenever it asks for an evaluation.

    torch's optimisers call their closure and expect a value back; running ``step`` in a thread
    lets the closure wait while the batch is evaluated. Only one element runs at a time: the
    driver hands over and waits, so every element's arithmetic happens in the order of a solo run.
    The thread lives as long as the optimiser (``close``): starting one per step would also start a
    new pool of torch's intra-op threads each time.
    """

    def __init__(self, index: int, row: torch.Tensor, optimizer: torch.optim.Optimizer):
        self.index, self.row, self.optimizer = index, row, optimizer
        self.waiting = False
        self.error: BaseException | None = None
        self._message: object = None
        self._busy = False  # handed over, not yet back
        self._go, self._back = threading.Semaphore(0), threading.Semaphore(0)
        threading.Thread(target=self._serve, daemon=True).start()

    def start(self) -> None:
        """Begin a step; return once it waits for an evaluation or has ended."""
        self.error = None
        self._hand_over(_STEP)

    def answer(self, loss: torch.Tensor, grad: torch.Tensor) -> None:
        """Give the waiting step its loss and gradient; return once it waits again or has ended."""
        self._hand_over((loss, grad))

    def abort(self) -> None:
        """End the step at work, wherever it is (after the evaluation in progress, if any)."""
        self.settle()
        if self.waiting:
            self._hand_over(_ABORT)

    def settle(self) -> None:
        """Wait until the element is back from a hand-over that an interruption cut short."""
        if self._busy:
            self._back.acquire()
            self._busy = False

    def close(self) -> None:
        self.abort()
        self._message = _CLOSE
        self._go.release()

    def _hand_over(self, message: object) -> None:
        self._message, self._busy = message, True
        self._go.release()
        self._back.acquire()
        self._busy = False

    def _serve(self) -> None:
        while True:
            self._go.acquire()
            if self._message is _CLOSE:
                return
            try:
                self.optimizer.step(self._closure)
            except _Abort:
                pass
            except BaseException as error:  # handed to the driver, which raises it in the main thread
                self.error = error
            finally:
                self.waiting = False
                self._back.release()

    def _closure(self) -> torch.Tensor:
        self.waiting = True
        self._back.release()
        self._go.acquire()
        self.waiting = False
        if self._message is _ABORT:
            raise _Abort
        loss, self.row.grad = self._message
        return loss


class Lockstep(torch.optim.Optimizer):
    """``make``'s optimiser for each row of ``image`` (``[N, 3, H, W]``), each stepping its element as in a solo run.

    Each row is a leaf tensor sharing the image's memory, with an optimiser of its own (its own
    history, line search and stop tests). ``step(closure)`` takes one step of every element whose
    ``active`` flag is set, in rounds: every element's optimiser runs until it asks for a value or
    ends its step; then one call of ``closure`` evaluates the rows listed in ``requested``, each at
    its own trial point (held in the image). The closure returns the total losses ``[N]`` and leaves
    the gradient in ``image.grad``; each waiting optimiser gets its row and goes on, unless its loss
    is not finite: then its step ends there (``callbacks.NaNGuard`` then ends the element). An L-BFGS step
    thus takes as many rounds as its longest line search, and each round evaluates only the
    elements that asked. A batch of one (a solo run) steps in the calling thread.
    """

    def __init__(
        self,
        image: torch.Tensor,
        make: Callable[[Sequence[torch.Tensor]], torch.optim.Optimizer],
        active: list[bool],
        states: Sequence[dict | None] | None = None,
    ):
        super().__init__([image], {})
        self.image, self.active = image, active
        self.requested: list[int] = []
        rows = [image.detach()[i : i + 1].requires_grad_() for i in range(image.shape[0])]
        self.elements = [_Element(i, row, make([row])) for i, row in enumerate(rows)]
        for element, state in zip(self.elements, states or []):
            if state is not None:  # a resumed element's optimiser goes on from its saved state
                element.optimizer.load_state_dict(state)
        self.close = weakref.finalize(self, _close, self.elements)  # ends the elements' threads, once

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> None:
        running = [element for element in self.elements if self.active[element.index]]
        if len(self.elements) == 1:
            if running:
                self._step_alone(running[0], closure)
            return
        try:
            for element in running:
                element.start()
            while waiting := [element for element in running if element.waiting]:
                self.requested = [element.index for element in waiting]
                with torch.enable_grad():
                    losses = closure()
                finite = torch.isfinite(losses).tolist()
                for element in waiting:
                    i = element.index
                    if finite[i]:
                        element.answer(losses[i], self.image.grad[i : i + 1].clone())
                    else:  # its step ends here, not after a line search's worth of passes on a non-finite loss
                        element.abort()
        except BaseException:
            for element in running:
                element.abort()
            raise
        finally:
            self.requested = []
        error = next((element.error for element in running if element.error is not None), None)
        if error is not None:
            raise error

    def _step_alone(self, element: _Element, closure: Callable[[], torch.Tensor]) -> None:
        """A solo run's step, in this thread: with no other element to wait for, a hand-over per evaluation would only
        cost time (about 1 ms each)."""

        def evaluate() -> torch.Tensor:
            self.requested = [0]
            losses = closure()
            if not torch.isfinite(losses[0]):
                raise _Abort
            element.row.grad = self.image.grad.clone()
            return losses[0]

        try:
            element.optimizer.step(evaluate)
        except _Abort:
            pass
        finally:
            self.requested = []


def _close(elements: list[_Element]) -> None:
    for element in elements:
        element.close()

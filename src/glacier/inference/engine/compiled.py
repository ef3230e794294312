"""``compile: true``: the network through ``torch.compile``, or uncompiled with one warning.

``torch.compile`` compiles on the first call, so whether it can (a C++ compiler for CPU
kernels, Triton for GPU ones, operators it knows) shows only then: the first failure warns
once, names the reason, and every later call runs the network as it is. MC-dropout passes
always run uncompiled (their seeded masks are Python hooks on the dropout layers).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

Forward = Callable[[Tensor], Tensor]


class CompiledNetwork:
    """Calls the compiled network, falling back to ``model`` itself once it cannot.

    Args:
        model: The network (normalizer included) in eval mode on its device.
        compile_model: Compiles ``model`` (``torch.compile`` by default; injectable for tests).
    """

    def __init__(
        self, model: nn.Module, compile_model: Callable[[nn.Module], Forward] | None = None
    ) -> None:
        self.model = model
        self.fallback_reason: str | None = None
        compile_model = compile_model or torch.compile
        try:
            self.compiled: Forward | None = compile_model(model)
        except Exception as error:  # any failure: run uncompiled
            self.compiled = None
            self._fall_back(error)

    def _fall_back(self, error: BaseException) -> None:
        self.compiled = None
        first_line = (str(error).strip().splitlines() or [""])[0]
        self.fallback_reason = f"{type(error).__name__}: {first_line[:200]}"
        warnings.warn(
            f"compile=true: torch.compile cannot compile the network here "
            f"({self.fallback_reason}); predicting with the uncompiled network",
            RuntimeWarning,
            stacklevel=3,
        )

    def __call__(self, batch: Tensor) -> Tensor:
        """The network's logits of ``batch`` (compiled while that works)."""
        if self.compiled is not None:
            try:
                logits: Tensor = self.compiled(batch)
                return logits
            except Exception as error:  # any failure: run uncompiled
                self._fall_back(error)
        plain: Tensor = self.model(batch)
        return plain

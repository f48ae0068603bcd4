"""Differential privacy (DP-SGD) with Opacus: make a model Opacus-compatible, wrap model, optimizer and data loader
for a target (ε, δ), and read the ε spent so far.

The contract used by centralised training (`radcnn.training.dp_fit`) and by each federated client:

- `DPConfig` — target ε, δ (None: 1/N of the training set), the per-sample clipping norm, Poisson sampling;
- `fix_model(model)` — `opacus.validators.ModuleValidator.fix` (BatchNorm → GroupNorm, …) and what it changed, in
  words a person can check ("BatchNorm2d 'features.norm0' → GroupNorm(32, 64, eps=1e-05, affine=True)");
- `make_private(model, optimizer, loader, dp, epochs)` — `PrivacyEngine.make_private_with_epsilon`: the noise
  multiplier that spends exactly the target ε over the planned epochs, with Poisson sampling;
- `epsilon_spent(engine, delta)` — the accountant's ε after the steps taken so far.

Opacus does the mathematics (per-sample gradients, clipping, noise, the PRV accountant); this module only checks
the inputs, turns Opacus's exceptions into `ConfigError`s a person can act on, and reports what it did.
"""

from __future__ import annotations

import importlib
import logging
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from radcnn.config import DPConfig
from radcnn.errors import ConfigError, MissingExtraError

log = logging.getLogger(__name__)

# Opacus's default accountant since 1.3: Privacy Random Variables (Gopi et al. 2021), tighter than RDP.
ACCOUNTANT = "prv"

__all__ = [
    "ACCOUNTANT",
    "DPConfig",
    "PrivateTraining",
    "epsilon_after",
    "epsilon_spent",
    "fix_model",
    "make_private",
    "make_private_with_noise",
    "resolve_delta",
    "steps_taken",
    "target_reachable",
]


def _opacus(module: str = "opacus") -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError("opacus", "federated") from None


@contextmanager
def _quiet_opacus() -> Iterator[None]:
    """Opacus warns that secure_mode is off (its noise comes from torch's PRNG, not a CSPRNG; documented in
    docs/training.md and recorded as ``secure_rng: false``) and that the RDP search hit its largest order (a looser,
    still valid bound). Both are known; the caller's own warnings stay untouched outside this block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
        warnings.filterwarnings("ignore", message=".*Optimal order is the largest alpha.*")
        yield


@dataclass
class PrivateTraining:
    """What Opacus hands back: train `model` (a GradSampleModule around the original, which stays reachable as
    ``model._module``) with `optimizer` (a DPOptimizer) on batches from `loader` (Poisson-sampled); `engine` holds
    the accountant. `noise_multiplier`, `sample_rate` and `delta` are recorded with the run."""

    model: nn.Module
    optimizer: Any
    loader: Any
    engine: Any
    noise_multiplier: float = 0.0
    sample_rate: float = 0.0
    delta: float = 0.0
    max_grad_norm: float = 1.0

    def epsilon(self) -> float:
        """The ε spent so far at this run's δ."""
        return epsilon_spent(self.engine, self.delta)

    def release(self) -> nn.Module:
        """Remove Opacus's hooks and per-sample attributes (Opacus's `cleanup`); returns the plain model, ready to
        be wrapped again (e.g. by the next federated round) or saved."""
        self.model.cleanup()
        return self.model._module

    def settings(self) -> dict[str, Any]:
        return {
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "delta": self.delta,
            "max_grad_norm": self.max_grad_norm,
            "accountant": self.engine.accountant.mechanism(),
        }


def fix_model(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """`ModuleValidator.fix(model)` and one line per replaced module, e.g.
    ``BatchNorm2d 'features.norm0' → GroupNorm(32, 64, eps=1e-05, affine=True)``; an empty list when the model was
    already compatible. The returned model is a fixed copy; `model` itself is left unchanged."""
    validators = _opacus("opacus.validators")
    before = dict(model.named_modules())
    fixed = validators.ModuleValidator.fix(model)  # a fixed clone; `model` stays as it was
    changes = []
    for name, module in fixed.named_modules():
        old = before.get(name)
        if old is not None and type(old) is not type(module):
            changes.append(f"{type(old).__name__} '{name or '(model)'}' → {module!r}")
    # Opacus's per-sample gradient hooks are full backward hooks, and autograd forbids modifying their output in
    # place (the seed CNN's ReLU(inplace=True) after a Linear); out-of-place activations compute the same values.
    in_place = [name for name, module in fixed.named_modules() if getattr(module, "inplace", False) is True]
    for name in in_place:
        fixed.get_submodule(name).inplace = False
    if in_place:
        changes.append(f"in-place activations made out-of-place (same values): {', '.join(repr(n) for n in in_place)}")
    residual = _out_of_place_residuals(fixed)
    if residual:
        changes.append(f"residual additions made out-of-place (same values): {', '.join(repr(n) for n in residual)}")
    remaining = validators.ModuleValidator.validate(fixed, strict=False)
    if remaining:
        raise ConfigError(
            "the model cannot be trained with DP-SGD even after Opacus's fixes: "
            + "; ".join(str(error) for error in remaining)
        )
    return fixed, changes


def _residual_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """MONAI ResNetBlock/ResNetBottleneck.forward with ``out + residual`` instead of ``out += residual``."""
    residual = x if self.downsample is None else self.downsample(x)
    out = self.act(self.bn1(self.conv1(x)))
    if hasattr(self, "conv3"):  # bottleneck: 1×1, 3×3, 1×1
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
    else:
        out = self.bn2(self.conv2(out))
    return self.act(out + residual)


def _out_of_place_residuals(model: nn.Module) -> list[str]:
    """MONAI's ResNet blocks add the shortcut in place onto a normalisation layer's output, which autograd forbids
    under Opacus's backward hooks ("Output 0 of BackwardHookFunction is a view and is being modified inplace").
    Opacus's validator does not know about it and MONAI has no out-of-place option, so the blocks of this training
    copy get the same computation out of place (an instance attribute: parameters and saved tensors unchanged; a
    model loaded for inference keeps MONAI's forward)."""
    try:
        from monai.networks.nets.resnet import ResNetBlock, ResNetBottleneck
    except ImportError:  # MONAI is a core dependency; without it there are no MONAI blocks to fix
        return []
    patched = []
    for name, module in model.named_modules():
        if type(module) in (ResNetBlock, ResNetBottleneck):
            module.forward = types.MethodType(_residual_forward, module)
            patched.append(name)
    return patched


def resolve_delta(dp: DPConfig, n_train: int) -> float:
    """δ as configured, or 1/N of the training set; a δ outside (0, 1) or not below 1 is a ConfigError."""
    if n_train < 1:
        raise ConfigError("DP-SGD needs a non-empty training set")
    delta = dp.delta if dp.delta is not None else 1.0 / n_train
    if not 0 < delta < 1:
        raise ConfigError(
            f"train.dp.delta must lie strictly between 0 and 1 (usually ≤ 1/N = {1 / n_train:.3g}); got {delta}"
        )
    return float(delta)


def _check_target(dp: DPConfig, epochs: int) -> None:
    if not dp.epsilon > 0:
        raise ConfigError(f"train.dp.epsilon must be a positive target ε (e.g. 8); got {dp.epsilon}")
    if not dp.max_grad_norm > 0:
        raise ConfigError(f"train.dp.max_grad_norm must be > 0; got {dp.max_grad_norm}")
    if epochs < 1:
        raise ConfigError(f"DP-SGD needs at least one planned epoch; got {epochs}")


def make_private(model: nn.Module, optimizer: Any, loader: Any, dp: DPConfig, epochs: int) -> PrivateTraining:
    """Wrap (model, optimizer, loader) with `PrivacyEngine.make_private_with_epsilon` so that `epochs` epochs spend
    the target (ε, δ). `model` must be Opacus-compatible (see `fix_model`). A target ε that no noise level reaches
    in the planned steps is a ConfigError that says so and what to change."""
    _check_target(dp, epochs)
    n_train = len(loader.dataset)
    delta = resolve_delta(dp, n_train)
    steps = epochs * len(loader)
    unreachable = ConfigError(
        f"target ε = {dp.epsilon} at δ = {delta:.3g} cannot be reached in the planned {steps} steps "
        f"({epochs} epoch(s) of {len(loader)} batches of {loader.batch_size} from {n_train} images): no noise level "
        "is large enough; raise train.dp.epsilon or train.dp.delta, or plan fewer epochs or smaller batches "
        "(a lower sampling rate)"
    )
    if not target_reachable(dp.epsilon, 1.0 / len(loader), steps, delta):
        raise unreachable
    try:
        with _quiet_opacus():
            engine = _opacus().PrivacyEngine(accountant=ACCOUNTANT)
            private_model, private_optimizer, private_loader = engine.make_private_with_epsilon(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                target_epsilon=dp.epsilon,
                target_delta=delta,
                epochs=epochs,
                max_grad_norm=dp.max_grad_norm,
                poisson_sampling=dp.poisson_sampling,
            )
    except ValueError as exc:
        if "budget is too low" not in str(exc):
            raise ConfigError(f"Opacus cannot make this training private: {exc}") from None
        raise unreachable from None
    sigma = float(private_optimizer.noise_multiplier)
    sample_rate = 1.0 / len(loader)
    log.info(
        "DP-SGD: target ε = %g at δ = %.3g over %d epoch(s) → noise multiplier %.4f, sampling rate %.4f, clip %g",
        dp.epsilon,
        delta,
        epochs,
        sigma,
        sample_rate,
        dp.max_grad_norm,
    )
    return PrivateTraining(
        private_model, private_optimizer, private_loader, engine, sigma, sample_rate, delta, dp.max_grad_norm
    )


def make_private_with_noise(
    model: nn.Module,
    optimizer: Any,
    loader: Any,
    *,
    noise_multiplier: float,
    max_grad_norm: float,
    poisson_sampling: bool = True,
    delta: float | None = None,
) -> PrivateTraining:
    """`PrivacyEngine.make_private` with a given noise multiplier (no ε target): for tests and for comparing a
    known σ with the accountant. δ defaults to 1/N."""
    with _quiet_opacus():
        engine = _opacus().PrivacyEngine(accountant=ACCOUNTANT)
        private_model, private_optimizer, private_loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            poisson_sampling=poisson_sampling,
        )
    n_train = len(loader.dataset)
    return PrivateTraining(
        private_model,
        private_optimizer,
        private_loader,
        engine,
        float(noise_multiplier),
        1.0 / len(loader),
        float(delta if delta is not None else 1.0 / n_train),
        float(max_grad_norm),
    )


def epsilon_spent(engine: Any, delta: float) -> float:
    """ε spent so far at `delta` by the engine's accountant (0 before the first step)."""
    if len(engine.accountant) == 0:
        return 0.0
    with _quiet_opacus():
        return float(engine.get_epsilon(delta))


def epsilon_after(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε after `steps` noisy steps at (σ, q) by the accountant `make_private` uses: for runs whose steps span
    several `make_private` calls with the same σ and q (a federated client's rounds), ε of all of them together."""
    if steps <= 0:
        return 0.0
    accountant = _opacus("opacus.accountants").create_accountant(mechanism=ACCOUNTANT)
    accountant.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    with _quiet_opacus():
        return float(accountant.get_epsilon(delta=delta))


def target_reachable(epsilon: float, sample_rate: float, steps: int, delta: float) -> bool:
    """Whether some noise level spends at most `epsilon` in `steps` steps at sampling rate q. Opacus's search
    finds an unreachable target by doubling σ up to its MAX_SIGMA, ~17 ever slower accountant calls (≈ 45 s on 2
    cores); ε falls as σ grows, so one call at the largest σ it would try answers the same question (≈ 5 s)."""
    # Opacus's first try, σ = 20, settles every usual target in one fast call (≈ 0.4 s); only a target it misses
    # pays for the call at the largest σ.
    if epsilon_after(20.0, sample_rate, steps, delta) <= epsilon:
        return True
    limit = float(_opacus("opacus.accountants.utils").MAX_SIGMA)
    sigma = 20.0  # Opacus tries 10·2^k, k ≥ 1, and gives up above MAX_SIGMA
    while sigma <= limit:
        sigma *= 2
    return epsilon_after(sigma, sample_rate, steps, delta) <= epsilon


def steps_taken(engine: Any) -> int:
    """Noisy optimizer steps recorded by the accountant (its history is (σ, q, steps) runs)."""
    return int(sum(entry[-1] for entry in engine.accountant.history))

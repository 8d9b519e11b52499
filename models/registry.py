"""Versioned model registry: one folder per version, an atomic `active` pointer, validation and rollback.

Layout under the registry root (default data/models):

    v001/ signal.ubj  signal.json  regime.json  metadata.json
    v002/ ...
    active          {"version": "v002", "history": ["v001"], "updated_at": ..., "by": ...}

A version is written into a temporary folder and renamed into place, and the pointer is replaced
with os.replace, so a reader sees either the old or the new state, never half of one. Loading a
version whose feature list differs from the code's is refused. Nothing here unpickles anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.dataset import SIGNAL_FEATURES
from models.metrics import roc_auc
from models.regime import RegimeModel
from models.signal import SignalModel

DEFAULT_MODELS_DIR = "data/models"
ACTIVE_FILE = "active"
METADATA_FILE = "metadata.json"
REGIME_FILE = "regime.json"
_VERSION_RE = re.compile(r"^v(\d{3,})$")


class RegistryError(ValueError):
    """A registry operation was refused; the message says why."""


@dataclass(frozen=True)
class ModelBundle:
    """What the live loop uses: both models of one version and its metadata."""

    version: str
    regime: RegimeModel
    signal: SignalModel
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Validation:
    ok: bool
    reason: str
    candidate_auc: float | None = None
    active_auc: float | None = None


Sample = tuple[np.ndarray, np.ndarray] | Callable[[ModelBundle], tuple[np.ndarray, np.ndarray]]


def _rows(sample: Sample, bundle: ModelBundle) -> tuple[np.ndarray, np.ndarray]:
    return sample(bundle) if callable(sample) else sample


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def library_versions() -> dict[str, str]:
    import hmmlearn
    import polars
    import sklearn
    import xgboost

    return {
        "xgboost": xgboost.__version__,
        "hmmlearn": hmmlearn.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "polars": polars.__version__,
    }


class ModelRegistry:
    """Versions on disk plus the active pointer. Safe for one writer; readers may be concurrent."""

    def __init__(self, root: str | Path, keep: int = 5, features: Sequence[str] = SIGNAL_FEATURES) -> None:
        if keep < 2:
            raise ValueError("keep must be at least 2 (the active version and one to roll back to)")
        self.root = Path(root)
        self.keep = keep
        self.features = tuple(features)
        self._lock = threading.Lock()

    # ----- listing
    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(found, key=lambda v: int(v[1:]))

    def path(self, version: str) -> Path:
        if not _VERSION_RE.match(version):
            raise RegistryError(f"bad version name {version!r} (expected v001, v002, ...)")
        return self.root / version

    def metadata(self, version: str) -> dict[str, Any]:
        path = self.path(version) / METADATA_FILE
        if not path.exists():
            raise RegistryError(f"version {version} not found in {self.root}")
        return json.loads(path.read_text())

    def _pointer(self) -> dict[str, Any]:
        path = self.root / ACTIVE_FILE
        if not path.exists():
            return {"version": None, "history": []}
        return json.loads(path.read_text())

    def active_version(self) -> str | None:
        return self._pointer().get("version")

    # ----- writing
    def save(self, regime: RegimeModel, signal: SignalModel, metadata: Mapping[str, Any]) -> str:
        """Write a new version (not active yet) and return its name."""
        if tuple(signal.feature_names) != self.features:
            raise RegistryError("signal model features do not match the registry's feature list")
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            existing = self.versions()
            version = f"v{(int(existing[-1][1:]) + 1) if existing else 1:03d}"
            tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=self.root))
            try:
                signal.save(tmp)
                regime.save(tmp / REGIME_FILE)
                meta = {
                    "version": version,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "status": "candidate",
                    "feature_names": list(signal.feature_names),
                    "libraries": library_versions(),
                    **dict(metadata),
                }
                (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=1, default=str))
                os.rename(tmp, self.root / version)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return version

    def _update_metadata(self, version: str, **changes: Any) -> None:
        meta = self.metadata(version)
        meta.update(changes)
        _atomic_write_text(self.path(version) / METADATA_FILE, json.dumps(meta, indent=1, default=str))

    # ----- loading
    def load(self, version: str) -> ModelBundle:
        meta = self.metadata(version)
        if list(meta.get("feature_names", [])) != list(self.features):
            raise RegistryError(
                f"version {version} was trained on a different feature list "
                f"({len(meta.get('feature_names', []))} features) than the code ({len(self.features)}); retrain it"
            )
        d = self.path(version)
        try:
            signal = SignalModel.load(d, expected_features=self.features)
            regime = RegimeModel.load(d / REGIME_FILE)
        except (OSError, ValueError, KeyError) as exc:
            raise RegistryError(f"version {version} cannot be loaded: {exc}") from exc
        return ModelBundle(version, regime, signal, meta)

    def load_active(self) -> ModelBundle | None:
        version = self.active_version()
        return None if version is None else self.load(version)

    # ----- validation, activation, rollback
    def validate(
        self,
        version: str,
        sample: Sample,
        margin: float = 0.01,
        min_auc: float | None = None,
    ) -> Validation:
        """Load the version, predict the sample, and compare its AUC with the active's on the same rows.

        `sample` is (x, y), or a function bundle -> (x, y) when the rows depend on the bundle (its HMM
        makes the `regime` column).
        """
        try:
            bundle = self.load(version)
            x, y = _rows(sample, bundle)
            p = bundle.signal.predict_proba(x)
        except (RegistryError, ValueError) as exc:
            return Validation(False, f"cannot load or predict: {exc}")
        if len(p) == 0 or not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
            return Validation(False, "predictions are empty or not probabilities")
        cand = roc_auc(p, y)
        if np.isnan(cand):
            return Validation(False, "validation sample holds only one class")
        if min_auc is not None and cand < min_auc:
            return Validation(False, f"AUC {cand:.4f} below the floor {min_auc:.2f}", cand)
        active = self.active_version()
        if active is None or active == version:
            return Validation(True, f"AUC {cand:.4f}; no other active model to beat", cand)
        try:
            act = self.load(active)
            ax, ay = _rows(sample, act)
            act_auc = roc_auc(act.signal.predict_proba(ax), ay)
        except (RegistryError, ValueError) as exc:
            return Validation(True, f"AUC {cand:.4f}; the active {active} cannot be scored ({exc})", cand)
        if cand < act_auc - margin:
            return Validation(
                False,
                f"AUC {cand:.4f} worse than active {active} {act_auc:.4f} by more than {margin}",
                cand,
                act_auc,
            )
        return Validation(
            True, f"AUC {cand:.4f} vs active {active} {act_auc:.4f} (margin {margin})", cand, act_auc
        )

    def activate(self, version: str, by: str = "system") -> str | None:
        """Point `active` at a version (it must load); returns the previously active version."""
        self.load(version)
        with self._lock:
            pointer = self._pointer()
            previous = pointer.get("version")
            if previous == version:
                return previous
            history = [v for v in pointer.get("history", []) if v != version]
            if previous is not None:
                history.append(previous)
            self._write_pointer(version, history, by)
            self._update_metadata(
                version, status="active", activated_at=datetime.now(UTC).isoformat(timespec="seconds")
            )
            if previous is not None and (self.path(previous) / METADATA_FILE).exists():
                self._update_metadata(previous, status="retired")
            self._prune()
        return previous

    def reject(self, version: str, reason: str) -> None:
        self._update_metadata(version, status="rejected", rejected_reason=reason)

    def rollback(self, by: str = "system") -> str:
        """Re-activate the version that was active before the current one; returns it."""
        with self._lock:
            pointer = self._pointer()
            history = [v for v in pointer.get("history", []) if (self.path(v) / METADATA_FILE).exists()]
            if not history:
                raise RegistryError("nothing to roll back to: no earlier active version is kept")
            target = history.pop()
            self.load(target)
            current = pointer.get("version")
            self._write_pointer(target, history, by, rolled_back_from=current)
            self._update_metadata(target, status="active")
            if current is not None:
                self._update_metadata(current, status="rolled_back")
        return target

    def _write_pointer(self, version: str, history: list[str], by: str, **extra: Any) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        body = {
            "version": version,
            "history": history,
            "by": by,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **extra,
        }
        _atomic_write_text(self.root / ACTIVE_FILE, json.dumps(body, indent=1))

    def _prune(self) -> None:
        """Keep the newest `keep` versions plus the active one and the one rollback would restore."""
        pointer = self._pointer()
        protected = {pointer.get("version"), *pointer.get("history", [])[-1:]}
        versions = self.versions()
        for old in versions[: max(len(versions) - self.keep, 0)]:
            if old not in protected:
                shutil.rmtree(self.path(old), ignore_errors=True)


class ModelSlot:
    """The live loop's handle on the active bundle; `swap` replaces it in one reference assignment.
    `note` says why it holds what it holds when that is not the registry's pointer (a load that failed)."""

    def __init__(self, bundle: ModelBundle | None = None, note: str = "") -> None:
        self._bundle = bundle
        self.note = note

    @property
    def current(self) -> ModelBundle | None:
        return self._bundle

    def swap(self, bundle: ModelBundle | None) -> ModelBundle | None:
        old, self._bundle = self._bundle, bundle
        self.note = ""
        return old


def stored_versions_text(registry: ModelRegistry) -> str:
    """'v001 (rejected), v002 (active)': what a user can pick from."""
    parts = []
    for v in registry.versions():
        try:
            status = registry.metadata(v).get("status", "?")
        except (RegistryError, ValueError, OSError):
            status = "unreadable"
        parts.append(f"{v} ({status})")
    return ", ".join(parts)


def resolve_version(registry: ModelRegistry, version: str) -> str:
    """The stored version a user means: 'v7' and '7' mean v007. A version that is not there is one
    line naming the versions that are."""
    text = version.strip().lower().removeprefix("v")
    if not text.isdigit():
        raise RegistryError(f"bad version name {version!r} (expected v001, v002, ...)")
    name = f"v{int(text):03d}"
    if name not in registry.versions():
        stored = stored_versions_text(registry)
        raise RegistryError(
            f"version {name} is not in {registry.root}; "
            + (f"stored versions: {stored}" if stored else "it holds no version (run `train` first)")
        )
    return name


def load_version(registry: ModelRegistry, version: str) -> ModelBundle:
    """Any stored version, whatever its status (a rejected one too), without activating it."""
    return registry.load(resolve_version(registry, version))

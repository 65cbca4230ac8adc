"""`roost train` configuration: a pydantic model (unknown fields rejected), YAML loading and `--set` overrides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from roost.errors import ConfigError, closest
from roost.training.models import DEFAULT_MODEL, MODEL_TYPES

TASKS = ("binary", "multiclass", "regression")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Where the rows come from: any `roost.datasets.load` source, or an entity table joined point-in-time with
    feature-store features (`entities:` + `features:`); an optional row sample."""

    source: str | None = None
    entities: str | None = Field(
        default=None, description="entity rows (a roost.datasets source) for the feature store"
    )
    features: list[str] | None = Field(default=None, description="feature refs, e.g. ['user_stats:*']")
    event_time: str = "event_time"
    sample: int | None = Field(default=None, gt=0, description="randomly keep this many rows (seeded)")

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.source is None) == (self.entities is None):
            raise ValueError("give either data.source or data.entities + data.features")
        if self.entities is not None and not self.features:
            raise ValueError("data.entities needs data.features (feature refs like 'user_stats:*')")
        return self

    @property
    def description(self) -> str:
        """A one-line description of where the rows come from."""
        return self.source if self.source is not None else f"{self.entities} + {', '.join(self.features or [])}"


class FeaturesConfig(_Strict):
    """Which columns are features and how they are encoded (inferred when omitted)."""

    include: list[str] | None = None
    exclude: list[str] = []
    kinds: dict[str, Literal["numeric", "categorical", "hash"]] = {}
    max_vocab: int = Field(default=10_000, gt=0)
    min_count: int = Field(default=2, gt=0)


class ModelConfig(_Strict):
    """Model type and its parameters (the model's defaults fill the rest)."""

    type: str = DEFAULT_MODEL
    params: dict[str, Any] = {}

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in MODEL_TYPES:
            near = closest(v, MODEL_TYPES)
            raise ValueError(
                f"unknown model type {v!r}; "
                + (f"did you mean {near!r}? " if near else "")
                + f"allowed: {', '.join(MODEL_TYPES)}"
            )
        return v


class TrainerConfig(_Strict):
    """Loop settings for torch models; unset values take the model's prescribed defaults."""

    batch_size: int | Literal["auto"] | None = Field(default=None, description="rows per step; auto by data size")
    lr: float | None = Field(default=None, gt=0)
    weight_decay: float | None = Field(default=None, ge=0)
    epochs: int | None = Field(default=None, gt=0)
    patience: int | None = Field(default=None, gt=0)
    min_delta: float | None = Field(default=None, ge=0)
    seed: int = 0
    log_every: int | None = Field(default=None, gt=0)

    @field_validator("batch_size")
    @classmethod
    def _positive(cls, v: Any) -> Any:
        if isinstance(v, int) and v <= 0:
            raise ValueError(f"must be a positive number of rows or auto, got {v}; e.g. batch_size: 1024")
        return v


class SplitConfig(_Strict):
    """Train/validation/test split: random (seeded) or by a time column."""

    method: Literal["random", "time"] = "random"
    test_size: float = Field(default=0.2, gt=0, lt=1)
    val_size: float = Field(default=0.1, gt=0, lt=1, description="share of the training rows for early stopping")
    seed: int = 0
    column: str | None = None
    test_start: str | None = None
    val_start: str | None = None

    @model_validator(mode="after")
    def _time_needs_column(self) -> SplitConfig:
        if self.method == "time" and not self.column:
            raise ValueError("method time needs a time column; set split.column to the timestamp column")
        return self


class TrainConfig(_Strict):
    """The whole `roost train` config."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    data: DataConfig
    label: str
    features: FeaturesConfig = FeaturesConfig()
    task: Literal["binary", "multiclass", "regression"] | None = None
    model: ModelConfig = ModelConfig()
    trainer: TrainerConfig = TrainerConfig()
    split: SplitConfig = SplitConfig()
    register_as: str | None = Field(default=None, alias="register", description="register the model under this name")
    experiment: str = "default"
    name: str | None = None
    time_budget: float | str | None = Field(
        default="auto", description="model: auto's wall-time budget: 60s, 5m, 1h, none; auto: 60 s per 200k cells"
    )

    @field_validator("time_budget")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        from roost.training.budget import parse_budget

        if v == "auto":
            return v
        try:
            return parse_budget(v)
        except ConfigError as exc:
            raise ValueError(f"{exc.message.split(': ', 1)[-1]}; {exc.hint}") from None

    @field_validator("data", mode="before")
    @classmethod
    def _data_str(cls, v: Any) -> Any:
        return {"source": v} if isinstance(v, str) else v

    @field_validator("model", mode="before")
    @classmethod
    def _model_str(cls, v: Any) -> Any:
        return {"type": v} if isinstance(v, str) else ({} if v is None else v)

    @field_validator("features", mode="before")
    @classmethod
    def _features_list(cls, v: Any) -> Any:
        return {"include": v} if isinstance(v, list) else ({} if v is None else v)


SECTIONS: dict[tuple[str, ...], type[BaseModel]] = {
    (): TrainConfig,
    ("data",): DataConfig,
    ("features",): FeaturesConfig,
    ("model",): ModelConfig,
    ("trainer",): TrainerConfig,
    ("split",): SplitConfig,
}


TYPE_HINTS = {
    "int_parsing": "use a whole number",
    "int_from_float": "use a whole number",
    "float_parsing": "use a number",
    "bool_parsing": "use true or false",
    "string_type": "use a string",
    "list_type": "use a list, e.g. [a, b]",
    "dict_type": "use a mapping of key: value",
    "model_type": "use a mapping of key: value",
}


def _format(exc: ValidationError) -> ConfigError:
    """One-line ConfigError from the first pydantic error (an unknown key before the rest): the dotted field, what is
    wrong, what is allowed."""
    errors = exc.errors()
    # an unknown key first: `labl:` is the cause of "label: required field is missing", and its did-you-mean says so
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(str(p) for p in err["loc"])
    field = ".".join(loc) or "config"
    if err["type"] == "extra_forbidden":
        allowed = [f.alias or n for n, f in SECTIONS.get(loc[:-1], TrainConfig).model_fields.items()]
        near = closest(loc[-1], allowed)
        return ConfigError(
            f"{field}: unknown field",
            hint=(f"did you mean {near!r}? " if near else "") + f"allowed: {', '.join(allowed)}",
        )
    if err["type"] == "missing":
        return ConfigError(f"{field}: required field is missing", hint=f"add `{loc[-1]}:` to the config")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "value_error":
        head, _, hint = msg.partition("; ")
        return ConfigError(f"{field}: {head}", hint=hint or None)
    ctx = err.get("ctx", {})
    hint = TYPE_HINTS.get(err["type"], f"check the value of {field}")
    if err["type"] == "literal_error":
        hint = "allowed: " + str(ctx.get("expected", "")).replace("'", "")
    elif err["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        hint = f"use a value {err['msg'].split('be ', 1)[-1]}"
    got = err.get("input")
    return ConfigError(f"{field}: {msg}" + ("" if isinstance(got, (dict, list)) else f" (got {got!r})"), hint=hint)


def parse_override(item: str) -> tuple[list[str], Any]:
    """'a.b=value' → (['a', 'b'], YAML-parsed value)."""
    import yaml

    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE", hint="e.g. --set trainer.lr=0.01")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {item!r}: empty key", hint="e.g. --set model.type=mlp")
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply `--set a.b=v` overrides to a raw config dict (strings for data/model/features expand first)."""
    out: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    expand = {"data": "source", "model": "type", "features": "include"}
    for item in overrides:
        parts, value = parse_override(item)
        cur = out
        for depth, p in enumerate(parts[:-1]):
            nxt = cur.get(p)
            if depth == 0 and p in expand and not isinstance(nxt, dict):
                nxt = {} if nxt is None else {expand[p]: nxt}
            elif not isinstance(nxt, dict):
                nxt = {}
            cur[p] = nxt
            cur = nxt
        cur[parts[-1]] = value
    return out


def load_raw(config: str | Path | dict[str, Any]) -> tuple[dict[str, Any], Path | None]:
    """The raw config dict and its file (None for a dict)."""
    import yaml

    if isinstance(config, dict):
        return dict(config), None
    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found", hint="pass the path of a YAML config")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}", hint="fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping", hint="e.g. `data: sklearn:breast_cancer`")
    return data, path


def load_config(config: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Validate a config file/dict (+ overrides); relative data paths resolve against the file's folder."""
    raw, path = load_raw(config)
    raw = apply_overrides(raw, overrides)
    try:
        cfg = TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise _format(exc) from None
    for attr in ("source", "entities"):
        value = getattr(cfg.data, attr)
        if path is not None and value is not None and ":" not in value.split("/")[0]:
            cand = path.parent / value
            if not Path(value).is_absolute() and cand.exists():
                setattr(cfg.data, attr, str(cand.resolve()))
    return cfg


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict → dotted keys; lists and None become JSON strings (params are scalars)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = json.dumps(v, default=str)
    return out

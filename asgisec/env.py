"""Environment variables ↔ :class:`~asgisec.config.SecurityConfig`, derived from the Structs.

The parser, the README's variable table and the CLI's start-up summary all walk the same
field list (:func:`iter_options`), so a new option is documented and parsed the moment it is
declared. Values are parsed per variable, so an error names the variable, its value and what
was expected instead of a msgspec path.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi

from .config import SecurityConfig, mask_secret
from .errors import ConfigError

__all__ = [
    "Option",
    "env_reference",
    "from_values",
    "iter_options",
    "read_env_file",
    "summary",
    "validate",
]


class Option(msgspec.Struct, frozen=True):
    """One option, as the env parser, the docs table and the CLI summary see it."""

    section: str
    field: str
    env: str
    type: mi.Type
    default: Any
    description: str
    secret: bool


def iter_options() -> Iterator[Option]:
    """Every option of :class:`SecurityConfig`, in definition order."""
    root = mi.type_info(SecurityConfig)
    assert isinstance(root, mi.StructType)
    for section in root.fields:
        section_type = section.type
        assert isinstance(section_type, mi.StructType)
        for field in section_type.fields:
            typ = field.type
            extra: dict[str, Any] = {}
            description = ""
            if isinstance(typ, mi.Metadata):
                extra = typ.extra or {}
                description = (typ.extra_json_schema or {}).get("description", "")
                typ = typ.type
            yield Option(
                section=section.name,
                field=field.name,
                env=extra.get("env", field.name.upper()),
                type=typ,
                default=(
                    field.default_factory()  # a mutable default (`= {}`) is kept as a factory
                    if field.default is msgspec.NODEFAULT
                    and field.default_factory is not msgspec.NODEFAULT
                    else field.default
                ),
                description=description,
                secret=bool(extra.get("secret")),
            )


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse_value(option: Option, raw: str) -> Any:
    typ = option.type
    text = raw.strip()
    if isinstance(typ, mi.BoolType):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(option.env, raw, "true or false")
    if isinstance(typ, mi.IntType):
        if not re.fullmatch(r"[+-]?\d+", text.replace("_", "")):
            raise ConfigError(option.env, raw, _describe_int(typ))
        try:
            number = int(text.replace("_", ""))
        except ValueError:  # past int()'s 4300-digit limit: no setting is that large
            raise ConfigError(option.env, raw, _describe_int(typ)) from None
        if (typ.ge is not None and number < typ.ge) or (typ.le is not None and number > typ.le):
            raise ConfigError(option.env, raw, _describe_int(typ))
        return number
    if isinstance(typ, mi.FloatType):
        try:
            number_f = float(text)
        except ValueError:
            number_f = -1.0
        # "not >" also refuses NaN; inf is refused as a timeout that never fires.
        if typ.ge is not None:
            if not number_f >= typ.ge or math.isinf(number_f):
                raise ConfigError(option.env, raw, f"a number of seconds >= {typ.ge}")
        elif not number_f > (typ.gt or 0.0) or math.isinf(number_f):
            raise ConfigError(option.env, raw, f"a number of seconds > {typ.gt}")
        return number_f
    if isinstance(typ, mi.DictType) and isinstance(typ.value_type, mi.DictType):
        try:  # nested settings (PATH_HEADERS) are JSON objects
            return msgspec.json.decode(text or "{}", type=dict[str, dict[str, str]])
        except msgspec.DecodeError:
            raise ConfigError(option.env, raw, "a JSON object of objects of strings") from None
    if isinstance(typ, mi.LiteralType):
        if text.lower() not in typ.values:
            raise ConfigError(option.env, raw, " or ".join(map(str, typ.values)))
        return text.lower()
    if isinstance(typ, mi.VarTupleType):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text if isinstance(typ, mi.StrType) else raw


def _describe_int(typ: mi.IntType) -> str:
    if typ.ge is not None and typ.le is not None:
        return f"a whole number from {typ.ge} to {typ.le}"
    return "a whole number" + (f" ≥ {typ.ge}" if typ.ge is not None else "")


_RESERVED_PREFIX = "RATE_LIMIT_"


def from_values(
    cls: type[SecurityConfig], values: Mapping[str, str], prefix: str
) -> SecurityConfig:
    sections: dict[str, dict[str, Any]] = {}
    known = set()
    for option in iter_options():
        known.add(option.env)
        raw = values.get(prefix + option.env)
        if raw is None or option.env == "RATE_LIMIT_<NAME>":
            continue
        sections.setdefault(option.section, {})[option.field] = _parse_value(option, raw)
    routes = {
        key[len(prefix) + len(_RESERVED_PREFIX) :].lower(): value.strip()
        for key, value in values.items()
        if key.startswith(prefix + _RESERVED_PREFIX) and key[len(prefix) :] not in known
    }
    if routes:
        sections.setdefault("rate_limit", {})["rate_limit_routes"] = routes
    section_types = {f.name: f.type for f in mi.type_info(SecurityConfig).fields}  # type: ignore[attr-defined]
    built = {}
    for name, fields in sections.items():
        section_cls = section_types[name].cls
        built[name] = section_cls(**fields)
    return cls(**built)


def validate(config: SecurityConfig) -> SecurityConfig:
    """Check a configuration built in code against every constraint ``from_env`` enforces.

    Struct constructors run ``__post_init__`` but not the declared bounds (``ge=0`` ...);
    converting through builtins does both, once, at start-up.
    """
    if not isinstance(config, SecurityConfig):
        raise TypeError(f"config must be a SecurityConfig, not {type(config).__name__}")
    try:
        return msgspec.convert(msgspec.to_builtins(config), SecurityConfig)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = re.search(r"at `\$\.\w+\.(\w+)", message)
        variable = match.group(1).upper() if match else "configuration"
        raise ConfigError(
            variable, _lookup(config, variable), message.split(" - at", maxsplit=1)[0]
        ) from None


def _lookup(config: SecurityConfig, variable: str) -> object:
    for option in iter_options():
        if option.env == variable:
            value = getattr(getattr(config, option.section), option.field)
            return _display(value, secret=option.secret)
    return None


def _display(value: object, *, secret: bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
        return msgspec.json.encode(value).decode()
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    text = str(value)
    return mask_secret(text) if secret else text


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=VALUE`` lines, optional ``export``, quotes and comments."""
    values: dict[str, str] = {}
    for raw_line in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, eq, value = line.partition("=")
        key = key.strip()
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)  # an unquoted value ends at " #"
        values[key] = value
    return values


def env_reference() -> str:
    """The Markdown table of every environment variable, for the README and docs."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for option in iter_options():
        default = (
            _display(option.default, secret=False) if option.env != "RATE_LIMIT_<NAME>" else ""
        )
        shown = f"`{default}`" if default else "*(empty)*"
        lines.append(f"| `{option.env}` | {shown} | {option.description} |")
    return "\n".join(lines) + "\n"


def summary(config: SecurityConfig) -> list[tuple[str, str]]:
    """``(VARIABLE, value)`` for every option, secrets masked: for start-up banners."""
    rows = []
    for option in iter_options():
        value = getattr(getattr(config, option.section), option.field)
        rows.append((option.env, _display(value, secret=option.secret)))
    return rows

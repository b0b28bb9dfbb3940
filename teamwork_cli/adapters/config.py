"""`TeamworkConfig`: the settings a Teamwork adapter file records, and their string metadata
(docs/conventions.md section 5), kept apart from the layers and the tensors as in peft's `config.py`.

`to_metadata()` and `from_metadata()` round-trip: a file's keys come back as they were read, unknown keys
included (`extra`), so a file read and written again by this tool keeps what other tools put in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

FORMAT_VERSION = "1.0"
IMPLEMENTATION = "teamwork-diffusion"
SPEC_VERSION = "1.0.0"
_LOOSE_TEAMMATE_RE = re.compile(r"^[^,\s]+\.(in|out)$")  # reading accepts any channel spelling

# metadata key -> field; every other key goes to `extra` untouched
_KEYS = {
    "modelspec.sai_model_spec": "spec_version",
    "modelspec.architecture": "architecture",
    "modelspec.implementation": "implementation",
    "modelspec.title": "title",
    "modelspec.resolution": "resolution",
    "base_model": "base_model",
    "teamwork.version": "version",
    "teamwork.teammates": "teammates",
    "teamwork.lora_rank": "rank",
    "teamwork.profile": "profile",
    "teamwork.lora_communication": "communication",
    "teamwork.use_bias": "use_bias",
    "teamwork.attn_allow": "attn_allow",
    "teamwork.teammate_image_ids": "teammate_image_ids",
}
JOINT_SUFFIX = "_PLUSATTN"  # the reference's profiles with joint attention across teammates, e.g. SD3_PLUSATTN


def parse_attn_allow(text: str, num_teammates: int) -> list[list[bool]]:
    """`teamwork.attn_allow` ("100;011;011"): row i says which teammates teammate i may attend to (docs/conventions.md
    section 5).  As the reference reads it: rows split on ';', spaces ignored, empty rows dropped, a square 0/1
    matrix of side T whose diagonal is all 1 (a teammate always attends to itself)."""
    rows = [r.replace(" ", "").strip() for r in text.split(";")]
    rows = [r for r in rows if r]
    if len(rows) != num_teammates:
        raise ValueError(f"attn_allow {text!r} has {len(rows)} rows; the team has {num_teammates} teammates")
    matrix = []
    for i, row in enumerate(rows):
        if len(row) != num_teammates or set(row) - {"0", "1"}:
            raise ValueError(f"attn_allow row {i} {row!r} must be {num_teammates} characters '0' or '1'")
        if row[i] != "1":
            raise ValueError(f"attn_allow row {i} {row!r} must have '1' at position {i} (a teammate sees itself)")
        matrix.append([c == "1" for c in row])
    return matrix


def format_attn_allow(matrix: list[list[bool]]) -> str:
    return ";".join("".join("1" if v else "0" for v in row) for row in matrix)


def parse_image_ids(text: str, num_teammates: int) -> list[int]:
    """`teamwork.teammate_image_ids` ("0,10,20"): one integer per teammate, its RoPE image-id offset."""
    try:
        ids = [int(x) for x in text.split(",")] if text.strip() else []
    except ValueError:
        raise ValueError(f"teammate_image_ids {text!r} must be comma-separated integers") from None
    if len(ids) != num_teammates:
        raise ValueError(f"teammate_image_ids {text!r} has {len(ids)} entries; the team has {num_teammates}")
    return ids


def default_image_ids(profile: str, num_teammates: int) -> list[int]:
    """The reference's defaults where a file has no teamwork.teammate_image_ids: all 0 without joint attention
    (the offsets are unused), 0, 10, 20, ... for FLUX2_PLUSATTN (klein's reference-image ids), else 0, 1, 2, ..."""
    if not profile.endswith(JOINT_SUFFIX):
        return [0] * num_teammates
    step = 10 if profile == "FLUX2" + JOINT_SUFFIX else 1
    return [step * t for t in range(num_teammates)]


def _parse_bool(value: str, key: str, where: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"{where}: metadata {key}={value!r} is not a boolean (expected 'True' or 'False')")


@dataclass
class TeamworkConfig:
    """What an adapter file says about its team, besides its tensors."""

    teammates: list[str]  # "<channel>.in|out", in the order of the tensors' first axis
    rank: int
    communication: bool = True  # False: the coordination-off ablation (each teammate reads only itself)
    use_bias: bool = True  # adapter biases on the layers whose base layer has one
    profile: str = ""  # the layer profile's name, e.g. SD3, FLUX, SDXL
    base_model: str = ""  # hub id or path of the base pipeline
    architecture: str = ""  # modelspec.architecture as stored, e.g. "stable-diffusion-3/teamwork"
    title: str = ""
    resolution: str | None = None  # "WxH", the training resolution, where recorded
    version: str = FORMAT_VERSION
    implementation: str = IMPLEMENTATION
    spec_version: str = SPEC_VERSION
    attn_allow: str | None = None  # "100;011;011": which teammates joint attention lets each one see (all: None)
    teammate_image_ids: list[int] | None = None  # per-teammate RoPE image-id offsets, where recorded
    extra: dict[str, str] = field(default_factory=dict)  # every other key (teamwork.objective, ...)

    def __post_init__(self) -> None:
        if self.attn_allow is not None:
            parse_attn_allow(self.attn_allow, len(self.teammates))
        if self.teammate_image_ids is not None and len(self.teammate_image_ids) != len(self.teammates):
            raise ValueError(
                f"teammate_image_ids {self.teammate_image_ids} must have one entry per teammate ({len(self.teammates)})"
            )

    @property
    def joint_attention(self) -> bool:
        """The profile says the team also attends jointly (the reference's *_PLUSATTN profiles)."""
        return self.profile.endswith(JOINT_SUFFIX)

    def allow_matrix(self) -> list[list[bool]] | None:
        return None if self.attn_allow is None else parse_attn_allow(self.attn_allow, len(self.teammates))

    def image_ids(self) -> list[int]:
        """The recorded offsets, else the reference's default for the profile."""
        if self.teammate_image_ids is not None:
            return list(self.teammate_image_ids)
        return default_image_ids(self.profile, len(self.teammates))

    @property
    def inputs(self) -> list[str]:
        return [t for t in self.teammates if t.endswith(".in")]

    @property
    def outputs(self) -> list[str]:
        return [t for t in self.teammates if t.endswith(".out")]

    def to_metadata(self) -> dict[str, str]:
        """The file's string metadata (modelspec.type = teamwork, architecture ending in /teamwork)."""
        arch = self.architecture if self.architecture.endswith("/teamwork") else f"{self.architecture}/teamwork"
        meta = {
            "modelspec.sai_model_spec": self.spec_version,
            "modelspec.architecture": arch,
            "modelspec.implementation": self.implementation,
            "modelspec.title": self.title,
            "modelspec.type": "teamwork",
            "base_model": self.base_model,
            "teamwork.version": self.version,
            "teamwork.teammates": ",".join(self.teammates),
            "teamwork.lora_rank": str(self.rank),
            "teamwork.profile": self.profile,
            "teamwork.lora_communication": str(bool(self.communication)),
            "teamwork.use_bias": str(bool(self.use_bias)),
        }
        if self.resolution is not None:
            meta["modelspec.resolution"] = self.resolution
        if self.attn_allow is not None:
            meta["teamwork.attn_allow"] = self.attn_allow
        if self.teammate_image_ids is not None:
            meta["teamwork.teammate_image_ids"] = ",".join(str(i) for i in self.teammate_image_ids)
        for key, value in self.extra.items():
            if key in meta or key in _KEYS or key == "modelspec.type":
                raise ValueError(f"extra metadata key {key!r} is reserved; set it through its own field")
            if not isinstance(value, str):
                raise ValueError(f"extra metadata {key!r} must be a string, got {type(value).__name__}")
            meta[key] = value
        return meta

    @classmethod
    def from_metadata(
        cls, meta: Mapping[str, str], *, where: str = "adapter", default_use_bias: bool = True
    ) -> TeamworkConfig:
        """Parse and check a file's metadata; `where` names the file in errors. default_use_bias: for files
        without teamwork.use_bias (whether the file has bias tensors)."""
        kind = meta.get("modelspec.type")
        if kind != "teamwork":
            raise ValueError(
                f"{where}: metadata modelspec.type is {kind!r}, expected 'teamwork'; not a Teamwork adapter checkpoint"
            )
        teammates = [t.strip() for t in meta.get("teamwork.teammates", "").split(",") if t.strip()]
        if not teammates:
            raise ValueError(
                f"{where}: metadata teamwork.teammates is missing or empty (expected e.g. 'image.in,diffuse.out')"
            )
        bad = [t for t in teammates if not _LOOSE_TEAMMATE_RE.match(t)]
        if bad or len(set(teammates)) != len(teammates):
            raise ValueError(f"{where}: teamwork.teammates {teammates} must be unique '<channel>.in|out' names")
        try:
            rank = int(meta.get("teamwork.lora_rank", ""))
        except ValueError:
            rank = 0
        if rank < 1:
            raise ValueError(
                f"{where}: metadata teamwork.lora_rank={meta.get('teamwork.lora_rank')!r} must be a positive integer"
            )
        allow, ids = meta.get("teamwork.attn_allow"), meta.get("teamwork.teammate_image_ids")
        try:
            if allow is not None:
                parse_attn_allow(allow, len(teammates))
            image_ids = None if ids is None else parse_image_ids(ids, len(teammates))
        except ValueError as e:
            raise ValueError(f"{where}: metadata teamwork.{e}") from None
        return cls(
            teammates=teammates,
            rank=rank,
            communication=_parse_bool(
                meta.get("teamwork.lora_communication", "True"), "teamwork.lora_communication", where
            ),
            use_bias=_parse_bool(meta.get("teamwork.use_bias", str(default_use_bias)), "teamwork.use_bias", where),
            profile=meta.get("teamwork.profile", ""),
            base_model=meta.get("base_model", ""),
            architecture=meta.get("modelspec.architecture", ""),
            title=meta.get("modelspec.title", ""),
            resolution=meta.get("modelspec.resolution"),
            version=meta.get("teamwork.version", FORMAT_VERSION),
            implementation=meta.get("modelspec.implementation", IMPLEMENTATION),
            spec_version=meta.get("modelspec.sai_model_spec", SPEC_VERSION),
            attn_allow=allow,
            teammate_image_ids=image_ids,
            extra={k: v for k, v in meta.items() if k not in _KEYS and k != "modelspec.type"},
        )


__all__ = [
    "FORMAT_VERSION",
    "IMPLEMENTATION",
    "JOINT_SUFFIX",
    "TeamworkConfig",
    "default_image_ids",
    "format_attn_allow",
    "parse_attn_allow",
    "parse_image_ids",
]

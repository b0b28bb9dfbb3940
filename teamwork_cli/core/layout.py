"""Team layouts: the ordered teammates of an adapter and which of them are inputs or outputs.

A teammate is `<channel>.<in|out>` (docs/conventions.md section 1). Presets are JSON data files in `presets/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from teamwork_cli.core.channels import TEAMMATE_RE, ChannelSpec, channel_spec


@dataclass(frozen=True)
class Teammate:
    name: str  # e.g. "normals.out"

    @property
    def channel(self) -> str:
        return self.name.split(".")[0]

    @property
    def is_input(self) -> bool:
        return self.name.endswith(".in")

    @property
    def spec(self) -> ChannelSpec:
        return channel_spec(self.channel)


def parse_teammate(name: str) -> Teammate:
    if not TEAMMATE_RE.match(name):
        raise ValueError(f"teammate {name!r} must look like <channel>.<in|out> with channel in [a-z]+, e.g. 'image.in'")
    return Teammate(name)


@dataclass(frozen=True)
class TeamLayout:
    teammates: tuple[Teammate, ...]
    name: str = "custom"
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = [t.name for t in self.teammates]
        if not names:
            raise ValueError("a team needs at least one teammate")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"teammates listed twice: {', '.join(dup)}")
        if not any(not t.is_input for t in self.teammates):
            raise ValueError(f"team {self.name!r} has no output teammate (<channel>.out): {', '.join(names)}")

    @classmethod
    def from_names(cls, names: list[str] | str, name: str = "custom", description: str = "") -> TeamLayout:
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        return cls(tuple(parse_teammate(n) for n in names), name=name, description=description)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.teammates]

    @property
    def inputs(self) -> list[Teammate]:
        return [t for t in self.teammates if t.is_input]

    @property
    def outputs(self) -> list[Teammate]:
        return [t for t in self.teammates if not t.is_input]

    def __len__(self) -> int:
        return len(self.teammates)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"no teammate {name!r} in team {self.name!r}; it has: {', '.join(self.names)}") from None

    def has(self, name: str) -> bool:
        return name in self.names


def presets_dir() -> Path:
    """`presets/` of a source checkout, else the copy packed into the wheel."""
    here = Path(__file__).resolve().parents[1]  # the teamwork_cli package
    for cand in (here.parent / "presets", here / "_presets"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("the presets folder is missing from this installation")


def available_presets() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.json"))


def load_preset(name: str) -> TeamLayout:
    path = presets_dir() / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(available_presets())}")
    data = json.loads(path.read_text())
    extra = {k: v for k, v in data.items() if k not in ("teammates", "description")}
    layout = TeamLayout.from_names(data["teammates"], name=name, description=data.get("description", ""))
    return TeamLayout(layout.teammates, name=name, description=layout.description, extra=extra)

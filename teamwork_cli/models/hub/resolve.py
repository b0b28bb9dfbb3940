"""Where an adapter comes from: `resolve_adapter` (a local file, a shipped name, or
`owner/repo/path/in/repo.safetensors` on the hub) and `task_adapter`, the one fallback every task command uses when
no --adapter is given."""

from __future__ import annotations

from pathlib import Path

from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.hub.errors import hub_error

PUBLISHED_REPO = "samsartor/teamwork-release"

# The `teamwork finetune --data` source each task's shipped adapter is trained on, for the hint.
TRAINING_DATA = {
    "svbrdf": "svbrdf",
    "intrinsics": "scenes",
    "inpaint": "inpaint",
    "inpaint-material": "inpaint",
    "shade": "scenes",
    "synthesize": "synthesize",
}


def default_adapter(preset: str) -> Path:
    """The shipped adapter of a task (`teamwork_cli/weights/<preset>.safetensors`), whether or not it exists."""
    from teamwork_cli.models.embedded import EMBEDDED_DIR

    return EMBEDDED_DIR / f"{preset}.safetensors"


def task_adapter(preset: str, adapter: str | Path | None = None) -> Path:
    """The adapter a task runs: `adapter` (see resolve_adapter) if given, else the task's shipped one."""
    if adapter is not None:
        return resolve_adapter(adapter)
    path = default_adapter(preset)
    if not path.is_file():
        raise TeamworkError(
            f"no {preset} adapter is shipped with this version yet ({path} is missing)",
            f"pass --adapter FILE.safetensors, e.g. one trained with `teamwork finetune --preset {preset} "
            f"--data procedural:{TRAINING_DATA.get(preset, preset)} -o {preset}.safetensors`",
        )
    return path


def shipped_adapters() -> list[str]:
    """Names of the adapters shipped in the package (`teamwork_cli/weights/<name>.safetensors`)."""
    from teamwork_cli.models.embedded import EMBEDDED_DIR

    return sorted(p.stem for p in EMBEDDED_DIR.glob("*.safetensors"))


def resolve_adapter(spec: str | Path) -> Path:
    """A local file wins; then the name of a shipped adapter (e.g. `inpaint-diffusion`); otherwise `owner/repo/file`
    is fetched with hf_hub_download (cache and HF_HUB_OFFLINE honoured)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    text = str(spec)
    if text in shipped_adapters():
        from teamwork_cli.models.embedded import EMBEDDED_DIR

        return EMBEDDED_DIR / f"{text}.safetensors"
    if path.is_dir():
        raise TeamworkError(f"adapter {text} is a folder, not a file", "give the adapter's .safetensors file")
    parts = text.split("/")
    if len(parts) >= 3 and not path.is_absolute() and not text.startswith((".", "~")) and all(parts):
        repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
        from teamwork_cli.models.hub.errors import hub_download

        try:
            return Path(hub_download(repo_id, filename))
        except Exception as e:  # the hub's error classes; translated into one message
            raise hub_error(f"adapter {filename} of {repo_id}", repo_id, e, f"hf download {repo_id} {filename}") from e
    raise TeamworkError(
        f"adapter file {text} not found",
        "give a .safetensors file, a shipped adapter by name ("
        f"{', '.join(shipped_adapters())}) or a hub file as owner/repo/file.safetensors, e.g. "
        f"{PUBLISHED_REPO}/colocated_svbrdf_estimation_flux_512.safetensors",
    )

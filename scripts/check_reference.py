"""Compare this package's Teamwork layers and adapter files with the reference implementation's (samsartor/teamwork).

    python scripts/check_reference.py --reference PATH [--families sd3,flux,...] [--rank 4]

PATH is a checkout of the reference (the folder that holds `teamwork/`); its `teamwork/adapter.py`, `linear.py`,
`config.py` and `batch.py` are imported from there (they need einops), and its `pipeline_*.py` for the layer
profiles where they import (else their `TEAMWORK_PROFILES[...] = [...]` lists are read from the source, except
a profile that also names layer classes of that module, such as a `*_PLUSATTN` one: its row says it was not run).

For each family both support, on a tiny random-weight pipeline (teamwork_cli.models.hub.testing), in fp32 on the
CPU: this package injects an adapter with random non-zero weights and saves it as `teamwork finetune` does; the
reference's loader (`load_safetensors` + `adapt(..., state=...)`) reads that file into a fresh copy of the same
base, so both apply their own layers to the same base layers with the same weights; both run the same team batch
(two images, the second without one teammate) through the denoiser.  Printed per family: the layers each selects,
whether the reference's loader took every tensor unchanged, whether the reference's own saved file loads here
unchanged, the max relative difference of the outputs (max |ours - reference| / max |reference|) and, for
scale, how much the adapter moves the output (max |reference - base| / max |reference|).  Then the same with
joint attention across the teammates, one image, for the families whose *_PLUSATTN profile the checkout has.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import torch

# family -> the reference's pipeline module that registers its profile
REFERENCE_MODULES = {
    "sd3": "pipeline_sd3",
    "flux": "pipeline_flux",
    "sdxl": "pipeline_sdxl",
    "sd2": "pipeline_sd2",
    "flux2": "pipeline_flux2_klein",
    "zimage": "pipeline_zimage",
}


def import_reference(path: Path) -> tuple[object, object, str]:
    """The reference's adapter and batch modules from `path`, and how its package was imported."""
    pkg = path / "teamwork"
    if not (pkg / "adapter.py").is_file():
        sys.exit(f"Error: {pkg / 'adapter.py'} not found; --reference is the folder that holds teamwork/")
    sys.path.insert(0, str(path))
    how = "package imported"
    try:
        importlib.import_module("teamwork")
    except Exception as e:  # its __init__ may import every pipeline; the layer modules do not need it
        how = f"package __init__ failed ({type(e).__name__}: {e}); submodules imported without it"
        spec = importlib.machinery.ModuleSpec("teamwork", None, is_package=True)
        spec.submodule_search_locations = [str(pkg)]
        sys.modules["teamwork"] = importlib.util.module_from_spec(spec)
    try:
        adapter = importlib.import_module("teamwork.adapter")
        importlib.import_module("teamwork.linear")
        batch = importlib.import_module("teamwork.batch")
    except ModuleNotFoundError as e:
        sys.exit(f"Error: the reference's layer modules need {e.name} (pip install {e.name})")
    return adapter, batch, how


def reference_profiles(ref_adapter, path: Path, families: list[str]) -> dict[str, str]:
    """Fill the reference's TEAMWORK_PROFILES from its pipeline modules; returns family -> how."""
    notes = {}
    for family in families:
        name = REFERENCE_MODULES[family]
        source = path / "teamwork" / f"{name}.py"
        if not source.is_file():
            notes[family] = f"teamwork/{name}.py not in the checkout"
            continue
        try:
            importlib.import_module(f"teamwork.{name}")
            notes[family] = f"teamwork/{name}.py imported"
        except Exception as e:  # e.g. a diffusers class it imports that this diffusers lacks
            found, partial = _profiles_from_source(source)
            for key, globs in found.items():
                if key in partial:  # its layer classes did not import: the glob strings alone are not the profile
                    UNAVAILABLE[key] = f"{key} names classes of teamwork/{name}.py, which did not import"
                else:
                    ref_adapter.TEAMWORK_PROFILES.setdefault(key, globs)
            notes[family] = f"teamwork/{name}.py failed to import ({type(e).__name__}: {e}); profiles read from source"
    return notes


# profile name -> why the reference's profile of that name cannot be used (filled by reference_profiles)
UNAVAILABLE: dict[str, str] = {}


def _profiles_from_source(source: Path) -> tuple[dict[str, list[str]], set[str]]:
    """`TEAMWORK_PROFILES["X"] = [...]` assignments: their glob strings, and the names of those that also list
    class-specific `(glob, Class)` entries (left out here, so those profiles are incomplete)."""
    out: dict[str, list[str]] = {}
    partial: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.List)):
            continue
        target = node.targets[0]
        if not (isinstance(target, ast.Subscript) and getattr(target.value, "id", None) == "TEAMWORK_PROFILES"):
            continue
        key = getattr(target.slice, "value", None)
        globs: list[str] = []
        for elt in node.value.elts:
            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                globs.append(elt.value)
            elif isinstance(elt, ast.Starred) and isinstance(elt.value, ast.Subscript):
                globs.extend(out.get(getattr(elt.value.slice, "value", None), []))
            elif isinstance(key, str):
                partial.add(key)
        if isinstance(key, str):
            out[key] = globs
    return out, partial


def _randomize(model, seed: int) -> None:
    from teamwork_cli.adapters.model import adapter_state_dict

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter_state_dict(model).values():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def _selection(ref_batch, batch, layout):
    """The reference's Selection for this package's TeamBatch rows (any row order works for both)."""
    ins = torch.tensor([t.endswith(".in") for t in layout])[batch.teammate_ids]
    values = {
        "enabled": True,
        "teammate_indices": batch.teammate_ids,
        "input_subindices": torch.nonzero(ins).flatten(),
        "output_subindices": torch.nonzero(~ins).flatten(),
        "batch_indices": batch.group_ids,
        "batch_matrix": torch.nn.functional.one_hot(batch.group_ids, batch.num_groups).bool(),
        "attn_keep": None,
    }
    return ref_batch.Selection(**{f.name: values[f.name] for f in fields(ref_batch.Selection) if f.name in values})


def _quiet_bars() -> None:
    """No save_pretrained bars for the tiny pipelines (stderr stays for real messages)."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def check_family(family: str, ref_adapter, ref_batch, root: Path, rank: int, joint: bool = False) -> dict[str, str]:
    """One row; joint: with joint attention across the teammates (the *_PLUSATTN profiles), on one image, since
    the reference's joint processors treat all rows of a batch as one image's teammates."""
    from teamwork_cli.adapters.checkpoint import load_adapter, save_adapter
    from teamwork_cli.adapters.config import default_image_ids
    from teamwork_cli.adapters.model import adapter_state_dict, inject_adapter
    from teamwork_cli.adapters.profiles import layers_to_adapt, profile_for
    from teamwork_cli.core.team import TeamBatch
    from teamwork_cli.models.hub import load_hub_denoiser
    from teamwork_cli.models.hub.testing import save_tiny_pipeline
    from teamwork_cli.models.joint_attention import disable_joint_attention, enable_joint_attention

    layout = ["image.in", "diffuse.out", "normals.out"]
    _quiet_bars()  # each load_hub_denoiser turns the library bars back on when it is done
    folder = root / family
    if not folder.is_dir():
        save_tiny_pipeline(family, folder)
    ours = load_hub_denoiser(str(folder), cache_embeds=False)
    prof = profile_for(ours.model)
    if joint and f"{prof.name}_PLUSATTN" in UNAVAILABLE:
        return {"family": f"{family} (joint)", "layers": f"not run: {UNAVAILABLE[prof.name + '_PLUSATTN']}"}
    if joint and f"{prof.name}_PLUSATTN" not in ref_adapter.TEAMWORK_PROFILES:
        return {}  # the reference's joint-attention profile is not in the checkout
    layers = layers_to_adapt(ours.model)
    inject_adapter(ours.model, layers, len(layout), rank)
    _randomize(ours.model, seed=1)
    if joint:
        enable_joint_attention(ours.model)
    ids = default_image_ids(prof.name, len(layout)) if prof.records_image_ids else None
    path = save_adapter(
        ours.model,
        root / f"{family}{'_joint' if joint else ''}.safetensors",
        layout,
        base_model=str(folder),
        title=f"check {family}",
        profile=prof.name,
        architecture=str(folder),
        teammate_image_ids=ids,
    )
    row = {"family": family + (" (joint)" if joint else ""), "profile": prof.name + ("_PLUSATTN" if joint else "")}

    # The layers the reference's own profile selects on the same model.
    globs = ref_adapter.TEAMWORK_PROFILES.get(prof.name)
    if globs is None:
        row["layers"] = f"{len(layers)} (reference profile not available)"
    else:
        theirs = list(ref_adapter.resolve_paths_to_adapt(load_hub_denoiser(str(folder)).model, globs))
        only_ours, only_theirs = sorted(set(layers) - set(theirs)), sorted(set(theirs) - set(layers))
        row["layers"] = (
            f"{len(layers)}, same as the reference's"
            if not (only_ours or only_theirs)
            else (
                f"{len(layers)} here, {len(theirs)} reference; only here {only_ours[:3]}, "
                f"only reference {only_theirs[:3]}"
            )
        )

    # The reference's loader reads this package's file into a fresh copy of the base.
    cfg, state, _ = ref_adapter.load_safetensors(str(path))
    base = load_hub_denoiser(str(folder), cache_embeds=False)
    override = None if cfg.profile in ref_adapter.TEAMWORK_PROFILES else []  # [] = exactly the file's layers
    base.model = ref_adapter.adapt(
        base.model, cfg, device=torch.device("cpu"), dtype=torch.float32, override_profile=override, state=state
    )
    got = {k: p.detach() for k, p in ref_adapter.adapter_parameters(base.model).items()}
    markers = {k for k in state if k.endswith(".adapter")}  # joint attention's scalars: `P.adapter` itself
    for key in markers:  # adapter_parameters lists only `adapter.*` names, so the markers are read directly
        got[key] = base.model.get_submodule(key.removesuffix(".adapter")).adapter.detach()
    same = got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)
    row["their loader"] = f"{len(state)} tensors {'unchanged' if same else 'DIFFER'}"
    if markers:
        row["their loader"] += f" ({len(markers)} joint markers)"

    # The same team batch through both.
    batch = TeamBatch.from_active([[0, 1, 2]] if joint else [[0, 1, 2], [0, 2]], len(layout))
    sel = _selection(ref_batch, batch, layout)
    for module in ref_adapter.adapter_modules(base.model).values():
        module.selection = sel
    g = torch.Generator().manual_seed(2)
    latents = ours.encode(torch.rand(batch.num_rows, 3, 16, 16, generator=g) * 2 - 1)
    t = torch.full((batch.num_rows,), 0.6 * ours.num_train_timesteps)
    with torch.no_grad():
        a = ours(latents, t, batch)
        b = base.predict(latents, t)
        plain = load_hub_denoiser(str(folder), cache_embeds=False).predict(latents, t)
    scale = b.abs().max().item()
    row["max rel diff"] = f"{(a - b).abs().max().item() / scale:.2e}"
    row["adapter effect"] = f"{(b - plain).abs().max().item() / scale:.2e}"
    if joint:  # how much the joint attention alone moves the output, for scale
        disable_joint_attention(ours.model)
        with torch.no_grad():
            alone = ours(latents, t, batch)
        row["adapter effect"] += f" (joint attention alone {(a - alone).abs().max().item() / scale:.2e})"

    # The reference's own file of those weights, loaded here.
    theirs_path = root / f"{family}{'_joint' if joint else ''}_reference.safetensors"
    ref_adapter.save_adapters(base.model, str(theirs_path), cfg)
    back = load_hub_denoiser(str(folder), cache_embeds=False)
    _, info = load_adapter(back.model, theirs_path, teammates=layout)
    mine = adapter_state_dict(back.model)
    layer_keys = state.keys() - markers
    ok = mine.keys() == layer_keys and all(torch.equal(mine[k], state[k]) for k in layer_keys)
    row["their file here"] = "loads, tensors unchanged" if ok else "DIFFERS"
    if joint:  # its save_adapters keeps only `adapter.*` names: the file says joint attention by its profile alone
        kept = len(info.joint_attention)
        row["their file here"] += f" ({kept} markers in it; joint attention {'on' if info.joint else 'OFF'})"
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="checkout of samsartor/teamwork")
    parser.add_argument("--families", default=",".join(REFERENCE_MODULES), help="comma-separated families")
    parser.add_argument("--rank", type=int, default=4)
    args = parser.parse_args()
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    bad = [f for f in families if f not in REFERENCE_MODULES]
    if bad:
        parser.error(f"unknown families {bad}; choose from {', '.join(REFERENCE_MODULES)}")
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny models
    for name in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):  # loading notices and bars of the tiny models
        os.environ.setdefault(name, "error")
    ref_adapter, ref_batch, how = import_reference(args.reference.resolve())
    import diffusers

    print(f"reference: {args.reference} ({how}); diffusers {diffusers.__version__}, torch {torch.__version__}")
    for family, note in reference_profiles(ref_adapter, args.reference.resolve(), families).items():
        print(f"  profile of {family}: {note}")
    columns = ["family", "profile", "layers", "their loader", "their file here", "max rel diff", "adapter effect"]
    print(" | ".join(columns))
    with tempfile.TemporaryDirectory() as tmp:
        for joint in (False, True):
            for family in families:
                try:
                    row = check_family(family, ref_adapter, ref_batch, Path(tmp), args.rank, joint)
                except Exception as e:  # one family's failure is reported, the others still run
                    name = family + (" (joint)" if joint else "")
                    row = {"family": name, "layers": f"FAILED: {type(e).__name__}: {e}"}
                if row:
                    print(" | ".join(row.get(c, "-") for c in columns), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

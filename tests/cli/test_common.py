"""What the commands share: batches of inputs grouped by size, failures counted."""

from __future__ import annotations

from pathlib import Path

from teamwork_cli.cli import common as C


def test_run_batches_groups_by_key_and_counts_failures(capsys):
    calls: list[list[str]] = []
    sizes = {"a.png": 1, "b.png": 2, "c.png": 1, "d.png": 1, "bad.png": 1, "e.png": 2}

    def read(f: str):
        if f == "bad.png":
            raise ValueError("cannot read")
        return sizes[f], f.upper()

    def infer(items: list[str], datas: list[str]) -> list[str]:
        calls.append(items)
        if "e.png" in items:
            raise RuntimeError("out of memory")
        return [d + "!" for d in datas]

    def save(f: str, data: str, result: str) -> list[Path]:
        assert result == data + "!"
        return [Path(f"{f}.out")]

    code = C.run_batches(list(sizes), read, infer, save, batch_size=2)
    out, err = capsys.readouterr()
    assert code == 1
    assert calls == [["a.png", "c.png"], ["b.png", "e.png"], ["d.png"]]  # same keys together, at most 2
    assert sorted(out.split()) == ["a.png.out", "c.png.out", "d.png.out"]
    assert "bad.png: cannot read" in err and "b.png, e.png: out of memory" in err and "--batch-size" in err
    assert "3 of 6 inputs failed" in err


def test_a_batch_has_one_overall_line_and_each_input_its_own(monkeypatch):
    monkeypatch.setattr(type(C.stderr), "is_terminal", property(lambda self: True))  # draws on terminals only
    seen = []

    def work(f: str) -> list[Path]:
        with C.progress_bar() as bar:
            job = bar.add_task(f, total=2)
            C.stage_reporter(bar, job, f)("photo fit")
            seen.append((len(C._active), sorted(t.description for t in bar.tasks)))
        seen.append(sorted(t.description for t in bar.tasks))
        return []

    assert C.run_batch(["a.png", "b.png"], work) == 0
    # While an input runs: the batch's display holds the overall line and the input's; after it, the input's
    # line is gone again.
    assert seen == [
        (1, ["a.png: photo fit", "inputs"]),
        ["inputs"],
        (1, ["b.png: photo fit", "inputs"]),
        ["inputs"],
    ]
    assert C._active == []
    with C.progress_bar() as bar:  # outside a batch: a display of its own
        assert bar.tasks == [] and C._active == []

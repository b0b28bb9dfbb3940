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

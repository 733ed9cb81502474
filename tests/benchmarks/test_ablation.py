import gzip
import json

import numpy as np
import pytest

from benchmarks import ablation
from benchmarks.seeds import _parse

CONFIG = {"title": "t", "groups": [{"name": "g", "dataset": "breast_cancer", "model": "tree", "epsilon": 1,
                                    "variants": {"base": {"init": "noise"}, "new": {"init": "dp_means"}}}]}


def _rows(seeds=5):
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        random, full, base = rng.uniform(0.8, 0.9), 0.95, rng.uniform(0.7, 0.9)
        for variant, score in (("base", base), ("new", base + 0.05 + 0.01 * seed)):
            rows.append({"group": "g", "variant": variant, "seed": seed, "metric": "auroc", "synthetic": score,
                         "full_data": full, "random_subset": random, "seconds": 1.0})
    return rows


def test_summary_pairs_by_seed_against_the_first_variant():
    summary = {e["variant"]: e for e in ablation.summarise(CONFIG, _rows())}
    assert summary["base"]["minus_baseline"] == (0.0, 0.0)
    mean, se = summary["new"]["minus_baseline"]
    assert mean == pytest.approx(0.07) and se == pytest.approx(np.std([0.05, 0.06, 0.07, 0.08, 0.09], ddof=1) / np.sqrt(5))
    assert summary["new"]["minus_full_data"][0] == pytest.approx(summary["new"]["mean"] - 0.95)
    assert summary["new"]["seeds"] == 5
    # a seed missing from one arm is not paired
    partial = [r for r in _rows() if not (r["variant"] == "new" and r["seed"] == 0)]
    assert {e["variant"]: e for e in ablation.summarise(CONFIG, partial)}["new"]["seeds"] == 4


def test_jobs_cover_every_variant_and_seed_once():
    jobs = ablation._jobs(CONFIG, seeds=7, block=3)
    covered = sorted((job["variant"], seed) for job in jobs for seed in job["seeds"])
    assert covered == sorted((v, s) for v in ("base", "new") for s in range(7))
    later = ablation._jobs(CONFIG, seeds=5, block=3, first_seed=10)  # extending a screen: seeds 10..14
    assert sorted((job["variant"], seed) for job in later for seed in job["seeds"]) == \
        sorted((v, s) for v in ("base", "new") for s in range(10, 15))


def test_a_groups_fixed_settings_reach_every_variant_under_its_own():
    config = json.loads(json.dumps(CONFIG))
    config["groups"][0]["fixed"] = {"init": "noise", "learning_rate": 0.05}
    sets = {job["variant"]: job["set"] for job in ablation._jobs(config, seeds=2, block=2)}
    assert sets == {"base": {"init": "noise", "learning_rate": 0.05}, "new": {"init": "dp_means", "learning_rate": 0.05}}
    text = ablation.markdown(ablation.summarise(config, _rows()), "t")
    assert "Every variant: init=noise, learning_rate=0.05 (unless it overrides them)." in text
    assert "Every variant" not in ablation.markdown(ablation.summarise(CONFIG, _rows()), "t")


def test_from_rows_writes_json_and_markdown(tmp_path):
    config, log = tmp_path / "config.json", tmp_path / "rows.jsonl"
    config.write_text(json.dumps(CONFIG))
    log.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    out, markdown = tmp_path / "out.json", tmp_path / "out.md"
    assert ablation.main([str(config), "--from-rows", str(log), "--out", str(out), "--markdown", str(markdown)]) == 0
    assert len(json.loads(out.read_text())["rows"]) == 10
    # two logs (a screen and its extension) are summarised together
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    rows = _rows()
    first.write_text("".join(json.dumps(r) + "\n" for r in rows if r["seed"] < 2))
    second.write_text("".join(json.dumps(r) + "\n" for r in rows if r["seed"] >= 2))
    assert ablation.main([str(config), "--from-rows", f"{first},{second}", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["seeds"] == 5 and len(json.loads(out.read_text())["rows"]) == 10
    text = markdown.read_text()
    assert "| new | init=dp_means |" in text and "+0.070 ±" in text


def test_one_real_block_runs_the_cli_protocol():
    job = {"group": "g", "variant": "new", "dataset": "breast_cancer", "model": "tree", "epsilon": 1,
           "set": {"init": "dp_means", "steps": 3, "num_directions": 2, "rows_per_class": 2}, "seeds": [0]}
    (row,) = ablation._run_block(job)
    assert row["metric"] == "auroc" and 0.0 <= row["synthetic"] <= 1.0 and row["full_data"] > 0.8


def test_compressed_rows_logs_are_read_and_extended(tmp_path):
    # Recorded rows logs are stored as .jsonl.gz: --from-rows reads them (also when named without .gz),
    # a --rows-log on one appends a gzip member, and an --out ending in .gz is written compressed.
    config, log = tmp_path / "config.json", tmp_path / "rows.jsonl.gz"
    config.write_text(json.dumps(CONFIG))
    rows = _rows()
    log.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows if r["seed"] < 2).encode()))
    from benchmarks.results_io import append_text, read_jsonl

    append_text(tmp_path / "rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows if r["seed"] >= 2))
    assert not (tmp_path / "rows.jsonl").exists() and read_jsonl(log) == rows
    out = tmp_path / "out.json.gz"
    assert ablation.main([str(config), "--from-rows", str(tmp_path / "rows.jsonl"), "--out", str(out)]) == 0
    assert json.loads(gzip.decompress(out.read_bytes()))["seeds"] == 5


def test_overrides_of_arguments_without_a_default_are_parsed_to_their_type():
    parse = _parse  # benchmarks.seeds, which ablation runs every seed through
    assert parse("True") is True and parse("false") is False  # JSON true / false, e.g. soft_labels
    assert parse("3") == 3 and isinstance(parse("3"), int) and parse("0.7") == 0.7 and parse("log") == "log"

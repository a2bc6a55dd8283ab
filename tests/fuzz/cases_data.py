"""Fuzz cases: data a run reads (corpora, GLUE folders)."""

from __future__ import annotations

from cases_base import OUT, Case


def corpora() -> list[Case]:
    """Corpora that are missing, empty, or folders without text files (a fresh LV-BERT run)."""
    def corpus(source: str) -> str:
        return f"task.corpus={{source: '{source}', heldout_fraction: 0.1}}"

    items = [
        ("@CASE@/no-such-corpus.txt", (), r"corpus.*no-such-corpus"),
        ("@CASE@/empty.txt", (("empty.txt", b""),), r"corpus.*empty\.txt"),
        ("@CASE@/blank.txt", (("blank.txt", b"\n\n   \n\t\n"),), r"corpus.*blank\.txt"),
        ("@CASE@/folder", (("folder/readme.md", b"# not a corpus\n"), ("folder/data.bin", b"\x00\x01")),
         r"corpus.*folder"),
        ("@CASE@/latin1.txt", (("latin1.txt", "Caf\xe9 au lait. " .encode("latin-1") * 200),), r"corpus.*latin1\.txt"),
        ("@CASE@/emptydir", (("emptydir/empty.txt", b""),), r"corpus.*emptydir"),
        ("@CASE@/bad.jsonl", (("bad.jsonl", b"{not json\n[1,2]\n"),), r"corpus.*bad\.jsonl"),
    ]
    return [Case(f"corpus-{i}", ("-q", "run", "@TINY@", "--out", OUT, "--set", corpus(src)), names, files=files,
                 keep_case_dir=False) for i, (src, files, names) in enumerate(items)]


RTE_HEADER = b"index\tsentence1\tsentence2\tlabel\n"
STSB_HEADER = b"index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"


def _rte_rows(label: bytes = b"entailment", n: int = 30) -> bytes:
    return b"".join(b"%d\tA man walks.\tA person walks.\t%s\n" % (i, label) for i in range(n))


def _stsb_rows(score: bytes = b"3.0", n: int = 30, bad_row: int = 5) -> bytes:
    rows = []
    for i in range(n):
        value = score if i == bad_row else b"%.1f" % (i % 6)
        rows.append(b"%d\tmain-captions\tMSRvid\t2012test\t%04d\tnone\tnone\tA man walks.\tA person walks.\t%s\n"
                    % (i, i, value))
    return b"".join(rows)


def glue_folders() -> list[Case]:
    """GLUE folders with bad TSVs (only a header, bad labels, NaN/inf STS-B scores, wrong
    columns), fine-tuned by ``--resume --stages glue`` on a retrained run."""
    good_rte = {"glue/RTE/train.tsv": RTE_HEADER + _rte_rows(), "glue/RTE/dev.tsv": RTE_HEADER + _rte_rows()}
    good_sts = {"glue/STS-B/train.tsv": STSB_HEADER + _stsb_rows(), "glue/STS-B/dev.tsv": STSB_HEADER + _stsb_rows()}
    # RTE is fine-tuned first; the STS-B cases start from a run whose RTE results exist
    rte, sts = "tiny_before_glue", "tiny_rte_done"
    items: list[tuple[dict[str, bytes], str, str]] = [
        ({**good_rte, "glue/RTE/dev.tsv": RTE_HEADER}, rte, r"RTE.*dev\.tsv|dev\.tsv.*RTE"),
        ({**good_rte, "glue/RTE/train.tsv": RTE_HEADER}, rte, r"RTE.*train\.tsv|train\.tsv.*RTE"),
        ({**good_rte, "glue/RTE/dev.tsv": b""}, rte, r"dev\.tsv"),
        (
            {**good_rte, "glue/RTE/dev.tsv": b"index\tsentence1\tlabel\n" + b"0\ta\tentailment\n" * 5},
            rte,
            r"dev\.tsv.*sentence2|sentence2.*dev\.tsv",
        ),
        (
            {**good_rte, "glue/RTE/train.tsv": RTE_HEADER + _rte_rows(b"maybe")},
            rte,
            r"train\.tsv.*label|label.*train\.tsv|maybe",
        ),
        (
            {
                **good_rte,
                "glue/RTE/dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tcaf\xe9\tb\tentailment\n".encode("latin-1"),
            },
            rte,
            r"dev\.tsv",
        ),
        ({**good_sts, "glue/STS-B/train.tsv": STSB_HEADER + _stsb_rows(b"nan")}, sts, r"STS-B.*train\.tsv|nan|NaN"),
        ({**good_sts, "glue/STS-B/train.tsv": STSB_HEADER + _stsb_rows(b"inf")}, sts, r"STS-B.*train\.tsv|inf"),
        ({**good_sts, "glue/STS-B/dev.tsv": STSB_HEADER + _stsb_rows(b"-inf")}, sts, r"STS-B.*dev\.tsv|inf"),
        ({**good_sts, "glue/STS-B/train.tsv": STSB_HEADER + _stsb_rows(b"abc")}, sts, r"STS-B.*train\.tsv|abc"),
        (
            {**good_sts, "glue/STS-B/dev.tsv": STSB_HEADER + _stsb_rows(b"NaN", bad_row=0)},
            sts,
            r"STS-B.*dev\.tsv|nan|NaN",
        ),
    ]
    cases = [Case(f"glue-{i}", ("-q", "run", "@TINY@", "--out", "@RUN@", "--resume", "--stages", "glue"), names,
                  files=tuple(files.items()), base=base, env=(("NASPLUG_DATA_DIR", "@CASE@"),), data=True)
             for i, (files, base, names) in enumerate(items)]
    # the documented contract for an absent folder: the task is reported as missing (exit 0)
    cases.append(Case("glue-missing-0", ("-q", "run", "@TINY@", "--out", "@RUN@", "--resume", "--stages", "glue"),
                      base="tiny_before_glue", env=(("NASPLUG_DATA_DIR", "@CASE@/nowhere"),), contract="glue-missing",
                      data=True))
    return cases

import io
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from augmenters import resources
from augmenters.errors import ResourceMissing
from augmenters.tagger import PerceptronTagger
from tests.conftest import ROOT, needs_wordnet


def test_lexnames_is_wordnets_45_line_table() -> None:
    lines = resources.lexnames_table().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3"
    assert lines[3] == "03\tnoun.Tops\t1"
    assert lines[29] == "29\tverb.body\t2"
    assert lines[44] == "44\tadj.ppl\t3"


def test_missing_wordnet_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTIFIT_WORDNET_DIR", str(tmp_path))
    with pytest.raises(ResourceMissing, match="wordnet-base"):
        resources.wordnet_source()


@needs_wordnet
def test_prepared_wordnet_is_a_copy_with_lexnames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTIFIT_CACHE", str(tmp_path))
    prepared = resources.wordnet_dir()
    assert prepared.is_relative_to(tmp_path)
    assert (prepared / "lexnames").read_text() == resources.lexnames_table()
    assert not any(p.is_symlink() for p in prepared.iterdir())
    assert resources.wordnet_dir() == prepared  # second call reuses it


def test_tagger_tags_english() -> None:
    tagger = resources.pos_tagger()
    words = "The battery lasts two full days and charging is quick .".split()
    assert tagger.tag(words) == ["DT", "NN", "VBZ", "CD", "JJ", "NNS", "CC", "NN", "VBZ", "JJ", "."]


def test_tagger_weights_load_without_executing_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps(({}, {}, Evil())))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        PerceptronTagger.load(path)
    ok = tmp_path / "ok.pickle"
    buf = io.BytesIO()
    pickle.dump(({"bias": {"NN": 1.0}}, {"the": "DT"}, {"NN", "DT"}), buf)
    ok.write_bytes(buf.getvalue())
    assert PerceptronTagger.load(ok).tag(["the", "cat"]) == ["DT", "NN"]


def test_import_augmenters_loads_no_heavy_framework() -> None:
    code = (
        "import sys, augmenters; heavy = [m for m in ('torch', 'transformers', 'nltk', 'fastapi', "
        "'sqlalchemy', 'numpy') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"


def test_errors_survive_pickling_across_processes() -> None:
    from augmenters.errors import RecordError, SpecError

    for err in (
        ResourceMissing("WordNet", "install it"),
        SpecError("bad", field="pipeline.p"),
        RecordError("no text", field="records[0].text"),
    ):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.field == err.field

from augmenters import augment
from augmenters.filters import DedupSpec, LengthRatioSpec, SimilaritySpec, UnchangedSpec


def test_unchanged_dedup_and_length_ratio() -> None:
    groups = [("a b c", ["a b c", "a  b c ", "a b", "x y z", "x y z", "a b c d e f g h"])]
    assert UnchangedSpec().build().keep(groups) == [[False, False, True, True, True, True]]
    assert DedupSpec().build().keep(groups) == [[True, True, True, True, False, True]]
    assert LengthRatioSpec(min=0.5, max=2.0).build().keep(groups) == [
        [True, True, True, True, True, False]
    ]


def test_similarity_floor_with_the_bundled_sentence_encoder() -> None:
    flt = SimilaritySpec(min=0.7, device="cpu").build()
    keep = flt.keep(
        [
            (
                "The battery lasts two full days.",
                [
                    "The battery lasts two whole days.",
                    "Quantum chromodynamics describes the strong interaction.",
                ],
            ),
            ("nothing to compare", []),
        ]
    )
    assert keep == [[True, False], []]


def test_filters_drop_variants_and_count_them() -> None:
    spec = {"pipeline": {"type": "mask", "p": 0.0}, "filters": [{"type": "unchanged"}]}
    assert augment([{"id": 1, "text": "hello world"}], spec, seed=0, n_variants=3) == []
    spec = {"pipeline": {"type": "mask", "p": 1.0}, "filters": [{"type": "dedup"}]}
    out = augment([{"id": 1, "text": "hello world"}], spec, seed=0, n_variants=3)
    assert [v.text for v in out] == ["[MASK] [MASK]"] and out[0].variant == 0


def test_adding_a_filter_keeps_the_same_variants() -> None:
    base = {"pipeline": {"type": "keyboard", "p": 0.3}}
    filtered = {**base, "filters": [{"type": "length_ratio", "min": 0.0, "max": 10.0}]}
    records = [{"id": i, "text": f"some sentence number {i} with several words"} for i in range(20)]
    assert augment(records, base, seed=3, n_variants=2) == augment(
        records, filtered, seed=3, n_variants=2
    )

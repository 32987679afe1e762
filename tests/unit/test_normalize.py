import unicodedata

import pytest

from nlu.normalize import fold, normalize_text, normalize_token


def test_fold_strips_diacritics_and_maps_d_stroke() -> None:
    assert fold("Đăng ký thường trú ĐÂU") == "dang ky thuong tru dau"


def test_fold_keeps_one_letter_per_letter_so_offsets_hold() -> None:
    text = "Kích hoạt định danh mức 2"
    assert len(fold(text)) == len(text)


def test_decomposed_input_folds_like_composed() -> None:
    composed = "căn cước"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert normalize_text(decomposed) == normalize_text(composed) == "can cuoc"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ko", "khong"),
        ("k", "khong"),
        ("đc", "duoc"),
        ("dc", "duoc"),
        ("j", "gi"),
        ("ntn", "nhu the nao"),
        ("bn", "bao nhieu"),
        ("sdt", "so dien thoai"),
        ("CCCD", "can cuoc cong dan"),
        ("mk", "mat khau"),
        ("e", "em"),
        ("a", "anh"),
        ("c", "chi"),
    ],
)
def test_teencode_expands(typed: str, expected: str) -> None:
    assert normalize_token(typed) == expected


def test_particle_with_diacritic_is_not_a_pronoun() -> None:
    assert normalize_token("ạ") == "a"
    assert normalize_token("a") == "anh"


def test_repeated_letters_are_squeezed_but_cccd_survives() -> None:
    assert normalize_token("khônggggg") == "khong"
    assert normalize_token("cccd") == "can cuoc cong dan"


def test_with_and_without_diacritics_normalise_alike() -> None:
    assert normalize_text("kích hoạt định danh mức 2 như thế nào") == normalize_text(
        "kich hoat dinh danh muc 2 ntn"
    )


def test_emoji_and_punctuation_are_dropped() -> None:
    assert normalize_text("làm CCCD ở đâu??? 😀😀") == "lam can cuoc cong dan o dau"

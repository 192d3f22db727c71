import datetime as dt
import hashlib
import hmac
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.domain.identity import (
    InvalidNationalId,
    InvalidPhoneNumber,
    NationalIdProblem,
    PhoneProblem,
    Sex,
    VerificationLevel,
    hash_national_id,
    hash_phone,
    mask_national_id,
    mask_phone,
    normalise_phone,
    parse_national_id,
)

TODAY = dt.date(2025, 6, 1)
KEY = b"k" * 32
OTHER_KEY = b"o" * 32
# GB/T 2260 province-level codes, written out rather than derived from the module.
PROVINCES = (
    *(11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45),
    *(46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91),
)


def check_character(body: str) -> str:
    """ISO 7064 MOD 11-2 from its definition, independent of the module's tables."""
    total = sum(int(digit) * pow(2, 17 - i, 11) for i, digit in enumerate(body))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def national_id(
    region: str = "320102", born: dt.date = dt.date(1990, 3, 7), seq: str = "123"
) -> str:
    body = f"{region}{born:%Y%m%d}{seq}"
    return body + check_character(body)


# --- verification levels -----------------------------------------------------------


def test_levels_sort_by_trust_not_alphabet() -> None:
    levels = list(VerificationLevel)
    random.Random(4).shuffle(levels)
    assert sorted(levels) == [
        VerificationLevel.ANONYMOUS,
        VerificationLevel.PHONE,
        VerificationLevel.REAL_NAME,
        VerificationLevel.FACE,
    ]
    assert [level.rank for level in VerificationLevel] == [0, 1, 2, 3]


def test_level_comparisons() -> None:
    assert VerificationLevel.PHONE < VerificationLevel.FACE  # alphabetically it is not
    assert VerificationLevel.FACE > VerificationLevel.REAL_NAME
    assert VerificationLevel.REAL_NAME >= VerificationLevel.REAL_NAME
    assert VerificationLevel.ANONYMOUS <= VerificationLevel.PHONE
    assert not VerificationLevel.FACE < VerificationLevel.ANONYMOUS
    assert max(VerificationLevel) is VerificationLevel.FACE
    assert VerificationLevel("real_name") is VerificationLevel.REAL_NAME
    assert str(VerificationLevel.PHONE) == "phone"


def test_level_refuses_ordering_against_plain_strings() -> None:
    with pytest.raises(TypeError):
        assert VerificationLevel.PHONE < "face"
    with pytest.raises(TypeError):
        # The reflected form must not fall back to str ordering either.
        assert "face" > VerificationLevel.PHONE  # noqa: SIM300


# --- national ID: valid numbers ----------------------------------------------------


def test_standard_examples_from_gb_11643() -> None:
    parsed = parse_national_id("11010519491231002X", today=TODAY)
    assert parsed.number == "11010519491231002X"
    assert parsed.birth_date == dt.date(1949, 12, 31)
    assert parsed.sex is Sex.FEMALE
    assert parsed.region_code == "110105"


def test_computed_example_is_male_with_odd_17th_digit() -> None:
    number = national_id("320102", dt.date(1990, 3, 7), "123")
    assert number == "320102199003071239"  # weighted sum 201, 201 mod 11 = 3, maps to 9
    parsed = parse_national_id(number, today=TODAY)
    assert parsed.sex is Sex.MALE
    assert parsed.birth_date == dt.date(1990, 3, 7)


def test_lowercase_x_spaces_and_full_width_digits_are_normalised() -> None:
    assert parse_national_id(" 110105 19491231 002x ", today=TODAY).number == "11010519491231002X"
    full_width = "１１０１０５１９４９１２３１００２Ｘ"
    assert parse_national_id(full_width, today=TODAY).number == "11010519491231002X"


def test_born_today_is_accepted() -> None:
    parse_national_id(national_id(born=TODAY), today=TODAY)


# --- national ID: every failure reason ---------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", NationalIdProblem.LENGTH),
        ("11010519491231002", NationalIdProblem.LENGTH),
        ("11010519491231002X1", NationalIdProblem.LENGTH),
        ("1" * 10_000, NationalIdProblem.LENGTH),
        ("1101051949123100XX", NationalIdProblem.CHARACTERS),
        ("11010519491231002Y", NationalIdProblem.CHARACTERS),
        ("11010519491231-02X", NationalIdProblem.CHARACTERS),
        ("²1010519491231002X", NationalIdProblem.CHARACTERS),  # only full-width forms fold
        (national_id(region="990101"), NationalIdProblem.REGION),
        (national_id(region="010101"), NationalIdProblem.REGION),
        (national_id(region="160101"), NationalIdProblem.REGION),
        ("440524188001010014", NationalIdProblem.BIRTH_DATE),  # GB 11643's own 1880 example
        (national_id(born=TODAY + dt.timedelta(days=1)), NationalIdProblem.BIRTH_DATE),
        (national_id(born=dt.date(1899, 12, 31)), NationalIdProblem.BIRTH_DATE),
        ("32010219900230123" + check_character("32010219900230123"), NationalIdProblem.BIRTH_DATE),
        ("32010219901301123" + check_character("32010219901301123"), NationalIdProblem.BIRTH_DATE),
        ("320102199003071235", NationalIdProblem.CHECK_DIGIT),
        ("11010519491231002" + "1", NationalIdProblem.CHECK_DIGIT),
    ],
)
def test_invalid_numbers_name_the_reason(raw: str, code: NationalIdProblem) -> None:
    with pytest.raises(InvalidNationalId) as caught:
        parse_national_id(raw, today=TODAY)
    assert caught.value.code is code
    digits = raw.strip().upper()
    if len(digits) >= 8:
        assert digits not in str(caught.value)
        assert digits not in repr(caught.value)


# --- national ID: properties -------------------------------------------------------

bodies = st.builds(
    lambda province, county, born, seq: f"{province}{county:04d}{born:%Y%m%d}{seq:03d}",
    st.sampled_from(PROVINCES),
    st.integers(0, 9999),
    st.dates(dt.date(1900, 1, 1), TODAY),
    st.integers(0, 999),
)


@given(body=bodies)
def test_any_body_with_computed_check_digit_parses(body: str) -> None:
    number = body + check_character(body)
    parsed = parse_national_id(number, today=TODAY)
    assert parsed.number == number
    assert parsed.birth_date == dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    assert parsed.sex is (Sex.MALE if int(body[16]) % 2 else Sex.FEMALE)


@given(body=bodies, position=st.integers(0, 17), data=st.data())
def test_any_single_character_change_is_rejected(
    body: str, position: int, data: st.DataObject
) -> None:
    number = body + check_character(body)
    alphabet = "0123456789X" if position == 17 else "0123456789"
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != number[position]]))
    mutated = number[:position] + replacement + number[position + 1 :]
    with pytest.raises(InvalidNationalId) as caught:
        parse_national_id(mutated, today=TODAY)
    if position >= 14:  # sequence and check digit: nothing but the checksum can notice
        assert caught.value.code is NationalIdProblem.CHECK_DIGIT


@given(body=bodies, position=st.integers(0, 15))
def test_adjacent_transpositions_are_rejected(body: str, position: int) -> None:
    number = body + check_character(body)
    if number[position] == number[position + 1]:
        return
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    with pytest.raises(InvalidNationalId):
        parse_national_id(swapped, today=TODAY)


# --- national ID: never leaked, masked and hashed ----------------------------------


def test_repr_and_str_never_reveal_the_number_or_birth_date() -> None:
    parsed = parse_national_id("320102199003071239", today=TODAY)
    for shown in (repr(parsed), str(parsed), f"{parsed}", f"{parsed!r}", repr([parsed])):
        assert "320102199003071239" not in shown
        assert "19900307" not in shown
        assert "1990" not in shown
        assert "3201**********1239" in shown


def test_mask_format() -> None:
    assert mask_national_id("320102199003071239") == "3201**********1239"
    assert mask_national_id("11010519491231002x") == "1101**********002X"
    with pytest.raises(InvalidNationalId):
        mask_national_id("12345")


def test_hash_is_stable_keyed_and_normalised() -> None:
    number = "11010519491231002X"
    expected = hmac.new(KEY, number.encode(), hashlib.sha256).hexdigest()
    assert hash_national_id(number, KEY) == expected
    assert hash_national_id(" 11010519491231002x", KEY) == expected
    assert hash_national_id(number, OTHER_KEY) != expected
    assert number not in expected


def test_hash_refuses_a_short_key() -> None:
    with pytest.raises(ValueError, match="key"):
        hash_national_id("11010519491231002X", b"short")


# --- phone numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("0086 13800138000", "+8613800138000"),
        ("19912345678", "+8619912345678"),
        ("+86 (10) 6552 9999", "+861065529999"),
        ("+44 20 7183 8750", "+442071838750"),
        ("+1 (415) 555-0100", "+14155550100"),
    ],
)
def test_phone_normalisation(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", PhoneProblem.LENGTH),
        ("   ", PhoneProblem.LENGTH),
        ("call me", PhoneProblem.CHARACTERS),
        ("+86 138 0013 800a", PhoneProblem.CHARACTERS),
        ("++8613800138000", PhoneProblem.CHARACTERS),
        ("138+00138000", PhoneProblem.CHARACTERS),
        ("+", PhoneProblem.CHARACTERS),
        ("12800138000", PhoneProblem.COUNTRY_CODE),  # 12x is not a mobile prefix
        ("02071838750", PhoneProblem.COUNTRY_CODE),
        ("+0123456789", PhoneProblem.COUNTRY_CODE),
        ("+123456", PhoneProblem.LENGTH),
        ("+1234567890123456", PhoneProblem.LENGTH),
        ("1" * 1000, PhoneProblem.LENGTH),
    ],
)
def test_phone_garbage_is_refused(raw: str, code: PhoneProblem) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalise_phone(raw)
    assert caught.value.code is code
    if len(raw.strip()) >= 7:
        assert raw not in str(caught.value)


def test_mask_phone() -> None:
    assert mask_phone("13800131234") == "+86 138****1234"
    assert mask_phone("+86 199 1234 5678") == "+86 199****5678"
    assert mask_phone("+44 20 7183 8750") == "+442*******50"
    masked = mask_phone("+1234567")
    assert masked == "+123**67"


def test_hash_phone_uses_the_normalised_number() -> None:
    assert hash_phone("138 0013 8000", KEY) == hash_phone("+8613800138000", KEY)
    assert hash_phone("13800138000", KEY) != hash_phone("13800138000", OTHER_KEY)
    expected = hmac.new(KEY, b"+8613800138000", hashlib.sha256).hexdigest()
    assert hash_phone("13800138000", KEY) == expected

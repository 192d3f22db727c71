"""Who a reporter is: verification levels, national ID numbers and phone numbers.

Everything here is a pure function over values.  National ID and phone numbers are
personal data: the values that carry them mask themselves in ``repr``/``str`` and the
errors never quote them, so a stray log line cannot leak one.  Storage keeps only the
keyed hash (for lookups) and the masked form (for display).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum


class VerificationLevel(StrEnum):
    """How sure we are who a reporter is; declared weakest first."""

    ANONYMOUS = "anonymous"
    PHONE = "phone"
    REAL_NAME = "real_name"
    FACE = "face"

    @property
    def rank(self) -> int:
        # Declaration order is the trust order, so adding a level in the right place
        # is the only edit needed.
        return list(VerificationLevel).index(self)

    def _rank_of(self, other: str) -> int:
        # A StrEnum would otherwise fall back to alphabetical str ordering, which puts
        # "face" below "phone": refuse anything that is not a level instead.
        if not isinstance(other, VerificationLevel):
            raise TypeError(f"cannot order a verification level against {type(other).__name__}")
        return other.rank

    def __lt__(self, other: str) -> bool:
        return self.rank < self._rank_of(other)

    def __le__(self, other: str) -> bool:
        return self.rank <= self._rank_of(other)

    def __gt__(self, other: str) -> bool:
        return self.rank > self._rank_of(other)

    def __ge__(self, other: str) -> bool:
        return self.rank >= self._rank_of(other)


# --- national ID numbers (GB 11643-1999) -------------------------------------------

NATIONAL_ID_LENGTH = 18

# Province-level codes in use (GB/T 2260), plus 83 (Taiwan residents' residence
# permits) and 91 (foreigners' permanent residence, new format).
_PROVINCE_CODES = frozenset(
    (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        *(71, 81, 82, 83, 91),
    )
)
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
# ISO 7064 MOD 11-2: weight i is 2**(17 - i) mod 11; remainder r maps to _CHECK[r].
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_EARLIEST_BIRTH_YEAR = 1900
# Far above any real input, so a megabyte of junk is refused before it is normalised.
_MAX_RAW_LENGTH = 256
_MIN_HASH_KEY_BYTES = 16


class NationalIdProblem(StrEnum):
    LENGTH = "length"
    CHARACTERS = "characters"
    REGION = "region"
    BIRTH_DATE = "birth_date"
    CHECK_DIGIT = "check_digit"


class InvalidNationalId(ValueError):
    """A national ID number failed validation; the message never quotes the number."""

    def __init__(self, code: NationalIdProblem, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, slots=True, repr=False)
class NationalId:
    """A checksum-valid national ID number; build it with `parse_national_id`."""

    number: str
    birth_date: dt.date
    sex: Sex

    @property
    def masked(self) -> str:
        return mask_national_id(self.number)

    @property
    def region_code(self) -> str:
        return self.number[:6]

    # The masked form hides the birth date too (digits 7-14), so neither leaks into logs.
    def __repr__(self) -> str:
        return f"NationalId({self.masked!r})"

    def __str__(self) -> str:
        return self.masked


def parse_national_id(raw: str, *, today: dt.date) -> NationalId:
    """Validate a resident national ID number as typed by a person.

    Whitespace is ignored, full-width characters (as Chinese input methods type them)
    are folded to ASCII and a trailing lowercase x is accepted.  Raises `InvalidNationalId`.
    """
    number = _normalise_national_id(raw)
    if int(number[:2]) not in _PROVINCE_CODES:
        raise InvalidNationalId(
            NationalIdProblem.REGION,
            f"region code starting {number[:2]} is not a province-level code",
        )
    birth_date = _birth_date(number, today=today)
    if _check_character(number[:17]) != number[17]:
        raise InvalidNationalId(
            NationalIdProblem.CHECK_DIGIT,
            "check digit does not match; a digit is probably mistyped",
        )
    sex = Sex.MALE if int(number[16]) % 2 else Sex.FEMALE
    return NationalId(number=number, birth_date=birth_date, sex=sex)


def mask_national_id(number: str) -> str:
    """First 4 and last 4 characters with 10 stars between, e.g. ``3201**********1234``."""
    normalised = _normalise_national_id(number)
    return normalised[:4] + "*" * 10 + normalised[-4:]


def hash_national_id(number: str, key: bytes) -> str:
    """Hex HMAC-SHA256 of the normalised number, for lookups without storing it.

    The key must stay secret: there are few enough valid numbers that an unkeyed or
    leaked-key hash can be reversed by trying them all.
    """
    return _keyed_hash(_normalise_national_id(number), key)


def _normalise_national_id(raw: str) -> str:
    if len(raw) > _MAX_RAW_LENGTH:
        raise InvalidNationalId(
            NationalIdProblem.LENGTH, f"a national ID number has {NATIONAL_ID_LENGTH} characters"
        )
    number = "".join(_fold_full_width(raw).split()).upper()
    if len(number) != NATIONAL_ID_LENGTH:
        raise InvalidNationalId(
            NationalIdProblem.LENGTH,
            f"a national ID number has {NATIONAL_ID_LENGTH} characters, got {len(number)}",
        )
    if not _ID_SHAPE.fullmatch(number):
        raise InvalidNationalId(
            NationalIdProblem.CHARACTERS,
            "a national ID number is 17 digits followed by a digit or X",
        )
    return number


def _birth_date(number: str, *, today: dt.date) -> dt.date:
    try:
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidNationalId(
            NationalIdProblem.BIRTH_DATE, "birth date digits are not a calendar date"
        ) from None
    if born.year < _EARLIEST_BIRTH_YEAR:
        raise InvalidNationalId(
            NationalIdProblem.BIRTH_DATE, f"birth year is before {_EARLIEST_BIRTH_YEAR}"
        )
    if born > today:
        raise InvalidNationalId(NationalIdProblem.BIRTH_DATE, "birth date is in the future")
    return born


def _check_character(body: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(body, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


# --- phone numbers -----------------------------------------------------------------

_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_CN_MOBILE_E164 = re.compile(r"\+86(1[3-9][0-9])([0-9]{4})([0-9]{4})")
_PHONE_SHAPE = re.compile(r"\+?[0-9]+")
# Separators people type or paste between digit groups.
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
# E.164 allows at most 15 digits; the shortest numbers in use have 7.
_E164_DIGITS = range(7, 16)


class PhoneProblem(StrEnum):
    CHARACTERS = "characters"
    LENGTH = "length"
    COUNTRY_CODE = "country_code"


class InvalidPhoneNumber(ValueError):
    """A phone number failed validation; the message never quotes the number."""

    def __init__(self, code: PhoneProblem, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalise_phone(raw: str) -> str:
    """E.164 form: ``+`` and digits.  A bare Chinese mobile number gets ``+86``.

    Accepts separators (spaces, dashes, dots, brackets), full-width digits and the
    ``00`` international prefix.  Other numbers without a country code are refused,
    because guessing one would route a call-back to the wrong country.
    """
    if len(raw) > _MAX_RAW_LENGTH:
        raise InvalidPhoneNumber(PhoneProblem.LENGTH, "a phone number has at most 15 digits")
    compact = _PHONE_SEPARATORS.sub("", _fold_full_width(raw))
    if not compact:
        raise InvalidPhoneNumber(PhoneProblem.LENGTH, "the phone number is empty")
    if not _PHONE_SHAPE.fullmatch(compact):
        raise InvalidPhoneNumber(
            PhoneProblem.CHARACTERS, "a phone number is digits with an optional leading +"
        )
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00"):
        digits = compact[2:]
    elif _CN_MOBILE.fullmatch(compact):
        digits = "86" + compact
    elif compact.startswith("86") and _CN_MOBILE.fullmatch(compact[2:]):
        # 13 digits cannot be a national number, so this is +86 with the + left off.
        digits = compact
    else:
        raise InvalidPhoneNumber(
            PhoneProblem.COUNTRY_CODE,
            "start the number with + and the country code (Chinese mobiles may omit it)",
        )
    if len(digits) not in _E164_DIGITS:
        raise InvalidPhoneNumber(
            PhoneProblem.LENGTH,
            f"an international number has 7 to 15 digits, got {len(digits)}",
        )
    if digits.startswith("0"):
        raise InvalidPhoneNumber(PhoneProblem.COUNTRY_CODE, "no country code starts with 0")
    return "+" + digits


def mask_phone(raw: str) -> str:
    """Display form: ``+86 138****1234`` for Chinese mobiles, ``+447*******56`` otherwise."""
    number = normalise_phone(raw)
    if mobile := _CN_MOBILE_E164.fullmatch(number):
        return f"+86 {mobile[1]}****{mobile[3]}"
    # Without a numbering-plan table the country code's length is unknown; keeping
    # three digits shows at least the country and the last two let a person recognise it.
    digits = number[1:]
    return "+" + digits[:3] + "*" * (len(digits) - 5) + digits[-2:]


def hash_phone(raw: str, key: bytes) -> str:
    """Hex HMAC-SHA256 of the normalised number (see `hash_national_id` on the key)."""
    return _keyed_hash(normalise_phone(raw), key)


def _fold_full_width(text: str) -> str:
    # Chinese input methods often type full-width digits and letters (U+FF01-FF5E);
    # they are the ASCII ones shifted by 0xFEE0.  Nothing else is folded, so lookalikes
    # such as superscripts stay invalid.
    return "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in text)


def _keyed_hash(value: str, key: bytes) -> str:
    if len(key) < _MIN_HASH_KEY_BYTES:
        raise ValueError(f"the hash key must have at least {_MIN_HASH_KEY_BYTES} bytes")
    return hmac.new(key, value.encode("ascii"), hashlib.sha256).hexdigest()

"""Every check-in language is complete, and the committed .mo files match their .po."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from kiosk import i18n

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|\{[a-z_]*\}")
REQUIRED = ["de", "en", "tr", "ar", "uk", "ru", "fa"]


def source_messages() -> set[str]:
    with open(ROOT / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.fixture(scope="module")
def messages() -> set[str]:
    found = source_messages()
    assert len(found) > 40  # the extraction really read the templates and the code
    assert "How old are you?" in found and "Residence or papers" in found
    return found


def po(lang: str):
    with open(i18n.TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=lang)


def test_required_languages_exist_in_order():
    assert list(i18n.LANGUAGES)[: len(REQUIRED)] == REQUIRED
    assert [c for c, lang in i18n.LANGUAGES.items() if lang.rtl] == ["ar", "fa"]
    assert sorted(p.name for p in i18n.TRANSLATIONS_DIR.iterdir() if p.is_dir()) == sorted(
        i18n.LANGUAGES
    )


@pytest.mark.parametrize("lang", REQUIRED)
def test_catalog_is_complete(lang, messages):
    cat = po(lang)
    ids = {m.id for m in cat if m.id}
    assert messages - ids == set(), f"{lang}: untranslated (run pybabel update)"
    assert ids - messages == set(), f"{lang}: obsolete messages in the catalog"
    for m in cat:
        if not m.id:
            continue
        assert m.string and m.string.strip(), f"{lang}: empty translation of {m.id!r}"
        assert not m.fuzzy, f"{lang}: fuzzy translation of {m.id!r}"
        assert sorted(PLACEHOLDER.findall(m.string)) == sorted(PLACEHOLDER.findall(m.id)), m.id
    if lang not in ("en",):
        # a real translation, not the English copied over
        same = [m.id for m in cat if m.id and m.string == m.id and len(m.id) > 8]
        assert same == [], f"{lang}: left in English: {same}"


@pytest.mark.parametrize("lang", REQUIRED)
def test_compiled_catalog_matches_po(lang):
    with open(i18n.TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.mo", "rb") as f:
        mo = read_mo(f)
    want = {m.id: m.string for m in po(lang) if m.id}
    got = {m.id: m.string for m in mo if m.id}
    assert got == want, f"{lang}: messages.mo is stale; run pybabel compile -d kiosk/translations"


def test_translations_render(tmp_path):
    from kiosk import create_app
    from telemetry.config import default_config
    from telemetry.store import Store

    st = Store(tmp_path / "v.db", van="t")
    try:
        client = create_app(config=default_config(), store=st).test_client()
        seen = set()
        for lang in REQUIRED:
            html = client.get(f"/{lang}/checkin").get_data(as_text=True)
            heading = re.search(r"<h1>(.*?)</h1>", html).group(1)
            assert heading == (po(lang).get("How old are you?").string)
            seen.add(heading)
        assert len(seen) == len(REQUIRED)
    finally:
        st.close()

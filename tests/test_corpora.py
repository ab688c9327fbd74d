"""The corpus loaders on the real Debian packages."""

import pytest

from bertkit import corpora


def test_python_docs():
    files = corpora.python_docs_files()
    assert len(files) > 450 and files == sorted(files)
    assert sum(f.stat().st_size for f in files) > 10_000_000
    assert any("The Python Tutorial" in line for line in corpora.python_docs_lines())


def test_debian_handbook_languages_and_text():
    languages = corpora.debian_handbook_languages()
    assert len(languages) == 26 and {"en-US", "zh-CN", "ar-MA", "el-GR"} <= set(languages)
    english = list(corpora.debian_handbook_lines("en-US"))
    chinese = list(corpora.debian_handbook_lines("zh-CN"))
    assert len(english) > 5000 and len(chinese) > 5000
    assert not any("<p" in line or "&amp;" in line for line in english[:2000])
    assert any("Debian" in line for line in english) and any("软件包" in line for line in chinese)
    with pytest.raises(ValueError, match="no language 'xx-XX'"):
        list(corpora.debian_handbook_lines("xx-XX"))


def test_html_text_lines_keep_visible_text_only():
    html = "<html><head><style>p {}</style><script>var x;</script></head><body><h1>Title &amp; more</h1>" \
           "<p>One   <b>bold</b>\nparagraph.</p><p></p><div>Two</div></body></html>"
    assert corpora.html_text_lines(html) == ["Title & more", "One bold paragraph.", "Two"]


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BERTKIT_CACHE", str(tmp_path))
    assert corpora.cache_dir() == tmp_path

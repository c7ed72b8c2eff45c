from subscriptions.templatetags.markdown_filters import markdown


def test_it_renders_markdown_with_govuk_classes():
    html = markdown("**Who we are**\n\n- one\n- two\n\n## Your rights\n\n[Charter](https://example.org/charter)")
    assert '<p class="govuk-body"><strong>Who we are</strong></p>' in html
    assert '<ul class="govuk-list govuk-list--bullet">' in html
    assert '<h2 class="govuk-heading-m">Your rights</h2>' in html
    assert 'href="https://example.org/charter"' in html
    assert 'rel="noopener noreferrer"' in html


def test_it_strips_scripts_event_handlers_and_javascript_links():
    html = markdown(
        "Hello <script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
        '[click](javascript:alert(3)) <a href="https://example.org" onclick="alert(4)">ok</a>'
    )
    assert "<script" not in html
    assert "alert(1)" not in html
    assert "onerror" not in html
    assert "<img" not in html
    assert "javascript:" not in html
    assert "onclick" not in html
    assert 'href="https://example.org"' in html


def test_it_drops_tags_outside_the_allowed_few():
    html = markdown('<span style="color:red">text</span> <iframe src="https://example.org"></iframe>')
    assert "<span" not in html
    assert "style=" not in html
    assert "<iframe" not in html
    assert "text" in html


def test_it_renders_nothing_for_no_text():
    assert markdown(None) == ""

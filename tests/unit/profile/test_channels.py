"""First-touch channel classification: what a marketer would call each visit."""

import pytest

from services.profile.domain.channels import Attribution, classify

SHOP = "https://shop.example/landing"


@pytest.mark.parametrize(
    ("campaign", "page_url", "referrer", "channel"),
    [
        # UTM tags say what the marketer meant, and win over the referrer.
        ({"source": "google", "medium": "cpc"}, SHOP, "https://www.google.com/", "paid_search"),
        ({"source": "bing", "medium": "PPC"}, SHOP, None, "paid_search"),
        ({"source": "facebook", "medium": "paid"}, SHOP, None, "social"),
        ({"source": "meta", "medium": "paid-social"}, SHOP, None, "social"),
        ({"source": "newsletter", "medium": "email"}, SHOP, None, "email"),
        ({"source": "instagram", "medium": "social"}, SHOP, None, "social"),
        ({"source": "partnerco", "medium": "affiliate"}, SHOP, None, "affiliate"),
        ({"source": "google", "medium": "organic"}, SHOP, None, "search"),
        ({"source": "blog", "medium": "referral"}, SHOP, None, "referral"),
        ({"source": "criteo", "medium": "display"}, SHOP, None, "other"),
        ({"source": "linkedin.com"}, SHOP, None, "social"),
        ({"source": "duckduckgo"}, SHOP, None, "search"),
        ({"name": "spring-sale"}, SHOP, None, "other"),
        # UTM in the landing URL when the SDK sent no context.campaign.
        (None, SHOP + "?utm_source=news&utm_medium=e-mail", None, "email"),
        # Ad click ids without UTM tags.
        (None, SHOP + "?gclid=Cj0KCQ", "https://www.google.com/", "paid_search"),
        (None, SHOP + "?fbclid=IwAR", "https://l.facebook.com/", "social"),
        # The referrer's host.
        (None, SHOP, "https://www.google.co.uk/search?q=socks", "search"),
        (None, SHOP, "https://search.brave.com/search?q=x", "search"),
        (None, SHOP, "android-app://com.google.android.googlequicksearchbox/", "search"),
        (None, SHOP, "https://m.facebook.com/", "social"),
        (None, SHOP, "https://t.co/abc", "social"),
        (None, SHOP, "https://mail.google.com/mail/u/0/", "email"),
        (None, SHOP, "https://blog.example.org/post", "referral"),
        # A link inside the shop, or no referrer at all: they came directly.
        (None, SHOP, "https://www.shop.example/cart", "direct"),
        (None, SHOP, None, "direct"),
        (None, None, None, "direct"),
    ],
)
def test_channel(
    campaign: dict[str, str] | None, page_url: str | None, referrer: str | None, channel: str
) -> None:
    assert classify(campaign, page_url, referrer).channel == channel


def test_source_and_medium_follow_the_usual_conventions() -> None:
    assert classify(None, SHOP, "https://www.bing.com/") == Attribution(
        "search", source="bing.com", medium="organic"
    )
    assert classify(None, SHOP, "https://blog.example.org/") == Attribution(
        "referral", source="blog.example.org", medium="referral"
    )
    tagged = classify(
        {"source": "news", "medium": "email", "name": "may", "term": "socks", "content": "b"},
        SHOP,
        None,
    )
    assert tagged == Attribution("email", "news", "email", "may", "socks", "b")


def test_a_malformed_url_is_no_referrer() -> None:
    assert classify(None, "http://[bad", "http://[also bad").channel == "direct"

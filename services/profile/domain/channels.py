"""Where a visit came from: UTM parameters, ad click ids and the referrer, as a marketer reads them.

Precedence, as in common web analytics: UTM tags (context.campaign, else the page URL's query)
say what the marketer meant; an ad click id says a paid click; else the referrer's host: a
search engine is `search`, a social network `social`, a webmail `email`, the shop's own host
nothing, any other site `referral`; no referrer is `direct`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from services.profile.domain.state import Channel

UTM_KEYS = ("source", "medium", "name", "term", "content")

_PAID_MEDIUMS = frozenset({"cpc", "ppc", "paid", "paidsearch", "paid_search", "sem", "retargeting"})
_PAID_SOCIAL_MEDIUMS = frozenset({"paid_social", "paidsocial", "social_paid", "social_ads"})
_SOCIAL_MEDIUMS = frozenset(
    {"social", "social_network", "social_media", "socialmedia", "sm", "organic_social"}
)
_EMAIL_MEDIUMS = frozenset({"email", "e_mail", "newsletter", "mail"})
_AFFILIATE_MEDIUMS = frozenset({"affiliate", "affiliates", "partner", "partners"})
_DISPLAY_MEDIUMS = frozenset({"display", "cpm", "banner", "programmatic", "interstitial"})

# Source names as tagged in UTM links, and host labels of the same sites.
_SEARCH_NAMES = frozenset(
    {
        "google",
        "bing",
        "yahoo",
        "duckduckgo",
        "baidu",
        "yandex",
        "ecosia",
        "naver",
        "seznam",
        "qwant",
        "startpage",
        "sogou",
    }
)
_SOCIAL_NAMES = frozenset(
    {
        "facebook",
        "fb",
        "instagram",
        "ig",
        "twitter",
        "x",
        "linkedin",
        "pinterest",
        "reddit",
        "tiktok",
        "youtube",
        "snapchat",
        "whatsapp",
        "telegram",
        "threads",
        "tumblr",
        "vk",
        "weibo",
        "quora",
        "discord",
        "mastodon",
    }
)
# Hosts matched exactly or as a parent domain (m.facebook.com ends with .facebook.com).
_SOCIAL_DOMAINS = (
    "facebook.com",
    "fb.com",
    "fb.me",
    "messenger.com",
    "instagram.com",
    "t.co",
    "twitter.com",
    "x.com",
    "linkedin.com",
    "lnkd.in",
    "pinterest.com",
    "pin.it",
    "reddit.com",
    "tiktok.com",
    "youtube.com",
    "youtu.be",
    "snapchat.com",
    "whatsapp.com",
    "wa.me",
    "t.me",
    "telegram.org",
    "threads.net",
    "tumblr.com",
    "vk.com",
    "weibo.com",
    "quora.com",
    "discord.com",
    "mastodon.social",
)
_WEBMAIL_DOMAINS = (
    "mail.google.com",
    "outlook.live.com",
    "outlook.office.com",
    "outlook.office365.com",
    "mail.yahoo.com",
    "mail.aol.com",
    "mail.proton.me",
    "mail.yandex.ru",
    "mail.zoho.com",
    "icloud.com",
)
_SEARCH_DOMAINS = ("search.brave.com",)
# Click ids ad networks append to landing URLs.
_PAID_SEARCH_CLICK_IDS = ("gclid", "gbraid", "wbraid", "dclid", "msclkid")
_SOCIAL_CLICK_IDS = ("fbclid", "ttclid", "twclid", "li_fat_id", "igshid")


@dataclass(frozen=True, slots=True)
class Attribution:
    channel: Channel
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    term: str | None = None
    content: str | None = None


def host_of(url: str | None) -> str | None:
    """Lower-case host without "www.", or None when the URL has none."""
    if not url:
        return None
    try:
        host = urlsplit(url if "//" in url else "//" + url).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host.removeprefix("www.")


def _on(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def _labels(host: str) -> list[str]:
    # Every label but the last (the TLD): google.co.uk -> google, co.
    return host.split(".")[:-1]


def _norm(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def _name_kind(source: str) -> Channel | None:
    """Channel a UTM source names ("google", "facebook.com", "newsletter"), if it names one."""
    name = _norm(source)
    if name in _EMAIL_MEDIUMS:
        return "email"
    host = host_of(name) if "." in name else None
    words = _labels(host) if host else [name]
    if host and _on(host, _SOCIAL_DOMAINS):
        return "social"
    if any(word in _SOCIAL_NAMES for word in words):
        return "social"
    if any(word in _SEARCH_NAMES for word in words):
        return "search"
    return None


def _utm_channel(source: str | None, medium: str | None) -> Channel:
    by_source = _name_kind(source) if source else None
    if medium:
        m = _norm(medium)
        if m in _PAID_SOCIAL_MEDIUMS:
            return "social"
        if m in _PAID_MEDIUMS or m.startswith("paid"):
            return "social" if by_source == "social" else "paid_search"
        if m in _EMAIL_MEDIUMS:
            return "email"
        if m in _SOCIAL_MEDIUMS:
            return "social"
        if m in _AFFILIATE_MEDIUMS:
            return "affiliate"
        if m == "organic":
            return "search"
        if m == "referral":
            return "referral"
        if m in _DISPLAY_MEDIUMS:
            return "other"
    return by_source or "other"


def campaign_affiliate(campaign: Mapping[str, Any] | None) -> str | None:
    """The affiliate a UTM-tagged link names: its source (else campaign) when medium=affiliate."""
    if not campaign:
        return None
    medium = _text(campaign.get("medium"))
    if medium is None or _norm(medium) not in _AFFILIATE_MEDIUMS:
        return None
    return _text(campaign.get("source")) or _text(campaign.get("name"))


def referrer_channel(referrer_host: str) -> Channel:
    if _on(referrer_host, _WEBMAIL_DOMAINS) or referrer_host.startswith(("mail.", "webmail.")):
        return "email"
    if _on(referrer_host, _SOCIAL_DOMAINS):
        return "social"
    if _on(referrer_host, _SEARCH_DOMAINS) or any(
        label in _SEARCH_NAMES for label in _labels(referrer_host)
    ):
        return "search"
    return "referral"


def _query(url: str | None) -> dict[str, str]:
    if not url or "?" not in url:
        return {}
    try:
        parsed = parse_qs(urlsplit(url).query)
    except ValueError:
        return {}
    return {key: values[0] for key, values in parsed.items() if values and values[0]}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def classify(
    campaign: Mapping[str, Any] | None, page_url: str | None, referrer_url: str | None
) -> Attribution:
    """The channel and source/medium/campaign of one visit."""
    utm: dict[str, str | None] = {key: _text((campaign or {}).get(key)) for key in UTM_KEYS}
    query = _query(page_url)
    if not any(utm.values()):
        utm = {
            key: _text(query.get("utm_" + ("campaign" if key == "name" else key)))
            for key in UTM_KEYS
        }
    if any(utm.values()):
        return Attribution(
            channel=_utm_channel(utm["source"], utm["medium"]),
            source=utm["source"],
            medium=utm["medium"],
            campaign=utm["name"],
            term=utm["term"],
            content=utm["content"],
        )
    referrer = host_of(referrer_url)
    if referrer is not None and referrer == host_of(page_url):
        referrer = None  # a link within the shop says nothing about how they came
    if any(key in query for key in _PAID_SEARCH_CLICK_IDS):
        return Attribution("paid_search", source=referrer, medium="cpc")
    if any(key in query for key in _SOCIAL_CLICK_IDS):
        return Attribution("social", source=referrer, medium="social")
    if referrer is None:
        return Attribution("direct")
    channel = referrer_channel(referrer)
    medium = {"search": "organic", "social": "social", "email": "email"}.get(channel, "referral")
    return Attribution(channel, source=referrer, medium=medium)

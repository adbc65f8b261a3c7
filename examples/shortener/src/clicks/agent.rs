//! Browser families from the `User-Agent` header, and the automated
//! fetchers (link previews, crawlers) whose visits are counted apart.

use aho_corasick::AhoCorasick;
use std::sync::LazyLock;

/// Link-preview fetchers: chat and social services that open a link when it
/// is posted, to show its title and image. Matched anywhere in the
/// `User-Agent`, ASCII case-insensitively.
const PREVIEW_AGENTS: &[&str] = &[
    "slackbot",
    "slack-imgproxy",
    "facebookexternalhit",
    "facebookcatalog",
    "twitterbot",
    "whatsapp",
    "discordbot",
    "telegrambot",
    "linkedinbot",
    "mastodon",
    "skypeuripreview",
    "redditbot",
    "pinterestbot",
    "iframely",
    "embedly",
    "vkshare",
];

/// Crawlers and other robots: named search engines, then the marks most
/// robots carry (`Name-bot/1.0`, a `+http` contact link). Deliberately not a
/// bare `bot`, which phone models (`CUBOT`) carry: a person taken for a
/// robot could not follow a link with a click budget.
const BOT_AGENTS: &[&str] = &[
    "googlebot",
    "bingbot",
    "duckduckbot",
    "yandexbot",
    "baiduspider",
    "applebot",
    "petalbot",
    "bot/",
    "crawler",
    "spider",
    "+http",
];

fn matcher(patterns: &[&str]) -> AhoCorasick {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(patterns)
        .expect("the agent patterns are a few short literals")
}

/// Built once; a search allocates nothing.
static PREVIEWS: LazyLock<AhoCorasick> = LazyLock::new(|| matcher(PREVIEW_AGENTS));
static BOTS: LazyLock<AhoCorasick> = LazyLock::new(|| matcher(BOT_AGENTS));

/// A browser family, from the `User-Agent` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentFamily {
    /// A link-preview fetcher (`PREVIEW_AGENTS`: Slackbot, WhatsApp, ...).
    Preview,
    /// A crawler or other robot (`BOT_AGENTS`: Googlebot, bingbot, ...).
    Bot,
    Curl,
    Wget,
    Edge,
    Opera,
    Firefox,
    Chrome,
    Safari,
    Other,
    Unknown,
}

impl AgentFamily {
    /// Classifies a `User-Agent` value; order matters, as most browsers
    /// name others in theirs (Edge says Chrome and Safari), and robots name
    /// browsers too. Allocates nothing.
    pub fn of(user_agent: Option<&str>) -> AgentFamily {
        let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) else {
            return AgentFamily::Unknown;
        };
        let has = |needle: &str| ua.contains(needle);
        if PREVIEWS.is_match(ua) {
            AgentFamily::Preview
        } else if BOTS.is_match(ua) {
            AgentFamily::Bot
        } else if ua.starts_with("curl/") {
            AgentFamily::Curl
        } else if ua.starts_with("Wget/") {
            AgentFamily::Wget
        } else if has("Edg/") || has("Edge/") {
            AgentFamily::Edge
        } else if has("OPR/") || has("Opera") {
            AgentFamily::Opera
        } else if has("Firefox/") {
            AgentFamily::Firefox
        } else if has("Chrome/") || has("Chromium/") || has("CriOS/") {
            AgentFamily::Chrome
        } else if has("Safari/") {
            AgentFamily::Safari
        } else {
            AgentFamily::Other
        }
    }

    /// A link preview or a crawler: its visits are counted under its family
    /// only, never in a link's total nor against its click budget.
    pub fn is_automated(self) -> bool {
        matches!(self, AgentFamily::Preview | AgentFamily::Bot)
    }

    /// The name shown in stats.
    pub fn name(self) -> &'static str {
        match self {
            AgentFamily::Preview => "preview",
            AgentFamily::Bot => "bot",
            AgentFamily::Curl => "curl",
            AgentFamily::Wget => "wget",
            AgentFamily::Edge => "edge",
            AgentFamily::Opera => "opera",
            AgentFamily::Firefox => "firefox",
            AgentFamily::Chrome => "chrome",
            AgentFamily::Safari => "safari",
            AgentFamily::Other => "other",
            AgentFamily::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_classified_by_family() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "chrome"),
            ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0", "edge"),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", "firefox"),
            ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", "safari"),
            // A phone whose model name holds "bot" is a person.
            ("Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36", "chrome"),
            ("curl/8.5.0", "curl"),
            ("Wget/1.21", "wget"),
            ("something", "other"),
            ("", "unknown"),
        ];
        for (ua, family) in cases {
            assert_eq!(AgentFamily::of(Some(ua)).name(), family, "{ua}");
        }
        assert_eq!(AgentFamily::of(None), AgentFamily::Unknown);
    }

    #[test]
    fn previews_and_crawlers_are_automated_in_any_case() {
        let previews = [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Twitterbot/1.0",
            "WhatsApp/2.23.20.0 A",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "TelegramBot (like TwitterBot)",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "http.rb/5.1.1 (Mastodon/4.2.0; +https://mastodon.social/)",
            "SLACKBOT",
        ];
        for ua in previews {
            let family = AgentFamily::of(Some(ua));
            assert_eq!(family, AgentFamily::Preview, "{ua}");
            assert!(family.is_automated());
        }
        let bots = [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "Baiduspider",
            "SomeCrawler 1.0",
        ];
        for ua in bots {
            let family = AgentFamily::of(Some(ua));
            assert_eq!(family, AgentFamily::Bot, "{ua}");
            assert!(family.is_automated());
        }
        assert!(!AgentFamily::of(Some("curl/8")).is_automated());
        assert!(!AgentFamily::Unknown.is_automated());
    }
}

//! The configuration ([`Config`]) and its validation into classes and rules ([`Rules`]).

use std::collections::HashMap;

use hooks_api::smtp_proto::classify::{Category, Rule, StatusPattern, BUILTIN_CLASSES};

/// `[plugins.bounce-rules]`: `[[class]]` and `[[rule]]` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// User bounce classes.
    #[serde(default)]
    pub class: Vec<ClassEntry>,
    /// Classification rules.
    #[serde(default)]
    pub rule: Vec<RuleEntry>,
}

/// One `[[plugins.bounce-rules.class]]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassEntry {
    /// The class id: not 0, not a built-in id.
    pub id: u16,
    /// Its name (unique, ignoring case, among all classes).
    pub name: String,
    /// Its description.
    #[serde(default)]
    pub description: String,
    /// `hard`, `soft`, `block`, `admin` or `undetermined` (any case).
    pub category: String,
}

/// A reply code (`550`) or an inclusive range (`"450-451"`, or `"550"` as a string).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum Codes {
    /// One code.
    Code(i64),
    /// `"NNN"` or `"NNN-NNN"`.
    Range(String),
}

/// One text needle or several.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum Texts {
    /// One needle.
    One(String),
    /// Several needles: any of them matches.
    Many(Vec<String>),
}

/// One `[[plugins.bounce-rules.rule]]`. Every condition given must hold; `text` matches when
/// the reply contains any needle, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    /// The class the rule yields: a built-in one or one of `[[class]]`.
    pub class: u16,
    /// Higher wins; the built-in rules use 0 to 1000 (`smtp_proto::classify::priority`).
    pub priority: i32,
    /// Reply codes.
    #[serde(default)]
    pub codes: Option<Codes>,
    /// An enhanced status pattern: `5.1.1`, `4.7.*`, `*.2.2`.
    #[serde(default)]
    pub status: Option<String>,
    /// Text needles.
    #[serde(default)]
    pub text: Option<Texts>,
}

/// A validated class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// The id.
    pub id: u16,
    /// The name.
    pub name: String,
    /// The description.
    pub description: String,
    /// The category.
    pub category: Category,
}

/// What the plugin registers, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// The classes, in configuration order.
    pub classes: Vec<Class>,
    /// The rules, in configuration order.
    pub rules: Vec<Rule>,
}

/// Parses a category name, ignoring ASCII case.
pub fn category(name: &str) -> Option<Category> {
    [
        Category::Undetermined,
        Category::Hard,
        Category::Soft,
        Category::Block,
        Category::Admin,
    ]
    .into_iter()
    .find(|c| c.as_str().eq_ignore_ascii_case(name))
}

/// Parses a code or range; codes must lie in 200..=599 and the range must not be empty.
pub fn code_range(codes: &Codes) -> Result<(u16, u16), String> {
    let one = |s: &str| -> Option<u16> {
        let s = s.trim();
        (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (lo, hi, shown) = match codes {
        Codes::Code(c) => {
            let c = u16::try_from(*c).ok();
            (c, c, codes_text(codes))
        }
        Codes::Range(s) => match s.split_once('-') {
            Some((a, b)) => (one(a), one(b), s.clone()),
            None => (one(s), one(s), s.clone()),
        },
    };
    match (lo, hi) {
        (Some(lo), Some(hi)) if (200..=599).contains(&lo) && (200..=599).contains(&hi) => {
            if lo > hi {
                Err(format!("codes {shown:?}: empty range ({lo} > {hi})"))
            } else {
                Ok((lo, hi))
            }
        }
        _ => Err(format!(
            "codes {shown:?}: expected a reply code (200 to 599) or a range like \"450-451\""
        )),
    }
}

fn codes_text(codes: &Codes) -> String {
    match codes {
        Codes::Code(c) => c.to_string(),
        Codes::Range(s) => s.clone(),
    }
}

impl Config {
    /// Checks every entry; an error names the entry (`class[1] (id 200)`, `rule[0]`) and
    /// what is wrong with it.
    pub fn validate(&self) -> Result<Rules, String> {
        let mut out = Rules::default();
        let mut ids: HashMap<u16, usize> = HashMap::new();
        for (i, c) in self.class.iter().enumerate() {
            let at = format!("class[{i}] (id {})", c.id);
            if c.id == 0 {
                return Err(format!("{at}: id 0 is reserved"));
            }
            if let Some(b) = BUILTIN_CLASSES.iter().find(|b| b.id == c.id) {
                return Err(format!(
                    "{at}: id {} is the built-in class {:?}; choose another id",
                    c.id, b.name
                ));
            }
            if let Some(j) = ids.insert(c.id, i) {
                return Err(format!("{at}: id {} is already used by class[{j}]", c.id));
            }
            let name = c.name.trim();
            if name.is_empty() || name.len() > hooks_api::smtp_proto::classify::MAX_CLASS_NAME {
                return Err(format!("{at}: name must be 1 to 64 bytes"));
            }
            let clash = BUILTIN_CLASSES
                .iter()
                .map(|b| b.name)
                .chain(out.classes.iter().map(|k: &Class| k.name.as_str()))
                .find(|n| n.eq_ignore_ascii_case(name));
            if let Some(n) = clash {
                return Err(format!("{at}: the name {name:?} is taken by class {n:?}"));
            }
            let category = category(&c.category).ok_or_else(|| {
                format!(
                    "{at}: unknown category {:?} (expected hard, soft, block, admin or undetermined)",
                    c.category
                )
            })?;
            out.classes.push(Class {
                id: c.id,
                name: name.to_owned(),
                description: c.description.clone(),
                category,
            });
        }
        for (i, r) in self.rule.iter().enumerate() {
            out.rules
                .push(r.to_rule(&ids).map_err(|e| format!("rule[{i}]: {e}"))?);
        }
        Ok(out)
    }
}

impl RuleEntry {
    fn to_rule(&self, own: &HashMap<u16, usize>) -> Result<Rule, String> {
        let builtin = BUILTIN_CLASSES.iter().any(|b| b.id == self.class);
        if !builtin && !own.contains_key(&self.class) {
            return Err(format!(
                "class {} is neither a built-in class nor defined in [[class]]",
                self.class
            ));
        }
        let mut rule = Rule::new(self.class, self.priority);
        if let Some(codes) = &self.codes {
            let (lo, hi) = code_range(codes)?;
            rule = rule.codes(lo..=hi);
        }
        if let Some(status) = &self.status {
            let pattern = StatusPattern::parse(status.trim()).ok_or_else(|| {
                format!(
                    "status {status:?}: expected a pattern like \"5.1.1\", \"4.7.*\" or \"*.2.2\""
                )
            })?;
            rule = rule.status(pattern);
        }
        let needles = match &self.text {
            None => Vec::new(),
            Some(Texts::One(t)) => vec![t.clone()],
            Some(Texts::Many(ts)) => ts.clone(),
        };
        if needles.iter().any(|n| n.trim().is_empty()) {
            return Err("text: empty needle (it would match every reply)".to_owned());
        }
        if matches!(self.text, Some(Texts::Many(ref ts)) if ts.is_empty()) {
            return Err("text: empty list".to_owned());
        }
        Ok(rule.texts(needles))
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

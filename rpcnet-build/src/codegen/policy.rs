//! Per-method policy attributes: `#[rpc(idempotent, deadline = "200ms", retries = 2,
//! hedge(after = "20ms" | "p95", max_extra = "10%"), hash_key = "arg")]`, parsed and checked
//! here (each error at its token) and written out as the method's `MethodPolicy` constant.

use proc_macro2::TokenStream;
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, LitInt, LitStr};

use super::validate::Errors;

/// The most retries a method may declare: more would only deepen an outage.
const MAX_RETRIES: u32 = 10;

/// What the `#[rpc(...)]` attributes of one method say.
#[derive(Default)]
pub(crate) struct Policy {
    /// `idempotent`: running the call twice does no more than running it once.
    pub(crate) idempotent: bool,
    /// `deadline = "200ms"`, in nanoseconds.
    pub(crate) deadline_nanos: Option<u64>,
    /// `retries = N`, with its literal for later checks.
    pub(crate) retries: Option<(u32, LitInt)>,
    /// `hedge(...)`, with the `hedge` path for later checks.
    pub(crate) hedge: Option<(Hedge, syn::Path)>,
    /// `hash_key = "arg"`: the argument's name and its literal.
    pub(crate) hash_key: Option<LitStr>,
    /// The span of the first option that applies to unary calls only, if any.
    pub(crate) unary_only: Option<(proc_macro2::Span, &'static str)>,
}

/// `hedge(after = ..., max_extra = ...)`.
pub(crate) struct Hedge {
    after: HedgeAfter,
    /// Tenths of a percent of extra calls at most (`"10%"` is 100).
    max_extra_per_mille: u16,
}

enum HedgeAfter {
    Delay(u64),
    /// Tenths of a percentile (`"p95"` is 950, `"p99.9"` is 999).
    Percentile(u16),
}

const OPTIONS: &str = "unknown rpc option; the options are `idempotent`, `deadline = \"200ms\"`, `retries = 2`, \
                       `hedge(after = \"20ms\", max_extra = \"10%\")` and `hash_key = \"argument\"`";

/// Reads every `#[rpc(...)]` of a method.
pub(crate) fn parse(attrs: &[Attribute], errors: &mut Errors) -> Policy {
    let mut policy = Policy::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("rpc")) {
        if let Err(err) = attr.parse_nested_meta(|meta| option(&mut policy, meta)) {
            errors.push(err);
        }
    }
    policy
}

fn option(policy: &mut Policy, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
    let path = meta.path.clone();
    let Some(name) = path.get_ident().map(|i| i.to_string()) else { return Err(meta.error(OPTIONS)) };
    match name.as_str() {
        "idempotent" => policy.idempotent = true,
        "deadline" => {
            let lit: LitStr = meta.value()?.parse()?;
            policy.deadline_nanos = Some(duration(&lit)?);
            policy.unary_only.get_or_insert((lit.span(), "deadline"));
        }
        "retries" => {
            let lit: LitInt = meta.value()?.parse()?;
            let retries: u32 = lit.base10_parse().ok().filter(|n| *n <= MAX_RETRIES).ok_or_else(|| {
                syn::Error::new_spanned(&lit, format!("`retries` takes a whole number from 0 to {MAX_RETRIES}"))
            })?;
            policy.unary_only.get_or_insert((lit.span(), "retries"));
            policy.retries = Some((retries, lit));
        }
        "hedge" => {
            let hedge = hedge(&meta)?;
            policy.unary_only.get_or_insert((path.span(), "hedge"));
            policy.hedge = Some((hedge, path));
        }
        "hash_key" => {
            let lit: LitStr = meta.value()?.parse()?;
            policy.unary_only.get_or_insert((lit.span(), "hash_key"));
            policy.hash_key = Some(lit);
        }
        _ => return Err(meta.error(OPTIONS)),
    }
    Ok(())
}

/// `hedge(after = "20ms" | "p95", max_extra = "10%")`: both are required.
fn hedge(meta: &ParseNestedMeta<'_>) -> syn::Result<Hedge> {
    let (mut after, mut max_extra) = (None, None);
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("after") {
            let lit: LitStr = inner.value()?.parse()?;
            after = Some(if lit.value().starts_with('p') {
                HedgeAfter::Percentile(tenths(&lit.value()[1..], 10, 999).ok_or_else(|| {
                    syn::Error::new_spanned(&lit, "a hedge percentile is `p1` to `p99.9`, like `\"p95\"`")
                })?)
            } else {
                HedgeAfter::Delay(duration(&lit)?)
            });
            Ok(())
        } else if inner.path.is_ident("max_extra") {
            let lit: LitStr = inner.value()?.parse()?;
            let value = lit.value();
            let percent = value.strip_suffix('%').and_then(|n| tenths(n, 1, 1000));
            max_extra = Some(percent.ok_or_else(|| {
                syn::Error::new_spanned(
                    &lit,
                    "`max_extra` is the most extra calls hedging may add, a percent above 0 and at most 100, like `\"10%\"`",
                )
            })?);
            Ok(())
        } else {
            Err(inner.error("`hedge` takes `after = \"20ms\"` (or a percentile, `\"p95\"`) and `max_extra = \"10%\"`"))
        }
    })?;
    match (after, max_extra) {
        (Some(after), Some(max_extra_per_mille)) => Ok(Hedge { after, max_extra_per_mille }),
        _ => Err(meta.error("`hedge` needs both `after = \"20ms\"` (or `\"p95\"`) and `max_extra = \"10%\"`")),
    }
}

/// A decimal with at most one digit after the point, in tenths, within `min..=max` tenths.
fn tenths(text: &str, min: u16, max: u16) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || fraction.len() != 1 {
        return None;
    }
    let value = whole.parse::<u16>().ok()?.checked_mul(10)?.checked_add(fraction.parse::<u16>().ok()?)?;
    (min..=max).contains(&value).then_some(value)
}

/// `"200ms"`: a whole number above zero and a unit, `us`, `ms`, `s` or `m`; in nanoseconds.
pub(crate) fn duration(lit: &LitStr) -> syn::Result<u64> {
    let text = lit.value();
    let error = || {
        syn::Error::new_spanned(
            lit,
            "a duration is a whole number above zero and a unit (`us`, `ms`, `s` or `m`), like `\"200ms\"`",
        )
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(error)?;
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit {
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        _ => return Err(error()),
    };
    let number: u64 = number.parse().map_err(|_| error())?;
    number.checked_mul(scale).filter(|n| *n > 0).ok_or_else(error)
}

impl Policy {
    /// The rules between options: hedging and retries repeat a call that may have run, so
    /// the method must be idempotent; options of unary calls stay off streaming methods.
    pub(crate) fn check(&self, streaming: bool, arg_names: &[String], errors: &mut Errors) {
        if let Some((_, path)) = &self.hedge
            && !self.idempotent
        {
            errors.push(syn::Error::new_spanned(
                path,
                "a hedged call runs twice at times: mark the method `#[rpc(idempotent, hedge(...))]` if that is safe",
            ));
        }
        if let Some((retries, lit)) = &self.retries
            && *retries > 0
            && !self.idempotent
        {
            errors.push(syn::Error::new_spanned(
                lit,
                "`retries` repeats calls that may have reached a server: mark the method `#[rpc(idempotent, retries = N)]` \
                 if that is safe (calls that never reached a server are retried anyway, by the channel's own setting)",
            ));
        }
        if streaming {
            if let Some((span, option)) = self.unary_only {
                errors.push(syn::Error::new(
                    span,
                    format!("`{option}` applies to unary methods only; give a streaming call its options per call"),
                ));
            }
            return;
        }
        if let Some(key) = &self.hash_key
            && !arg_names.contains(&key.value())
        {
            let names = arg_names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            let names = if names.is_empty() { "none".to_owned() } else { names };
            errors.push(syn::Error::new_spanned(
                key,
                format!(
                    "`hash_key` names an argument of the method, whose value keys the call; its arguments: {names}"
                ),
            ));
        }
    }

    /// The method's `MethodPolicy` constant expression.
    pub(crate) fn tokens(&self, krate: &TokenStream) -> TokenStream {
        let policy = quote!(#krate::__private::MethodPolicy);
        let mut value = quote!(#policy::new());
        if self.idempotent {
            value = quote!(#value.with_idempotent(true));
        }
        if let Some(nanos) = self.deadline_nanos {
            let deadline = duration_tokens(nanos);
            value = quote!(#value.with_deadline(#deadline));
        }
        if let Some((retries, _)) = &self.retries {
            value = quote!(#value.with_retries(#retries));
        }
        if let Some((hedge, _)) = &self.hedge {
            let hedge_policy = quote!(#krate::__private::HedgePolicy);
            let after = match hedge.after {
                HedgeAfter::Delay(nanos) => {
                    let delay = duration_tokens(nanos);
                    quote!(#hedge_policy::after_delay(#delay))
                }
                HedgeAfter::Percentile(tenths) => quote!(#hedge_policy::after_percentile(#tenths)),
            };
            let max_extra = hedge.max_extra_per_mille;
            value = quote!(#value.with_hedge(#after.with_max_extra_per_mille(#max_extra)));
        }
        value
    }
}

/// A `Duration` in the largest whole unit, so generated code reads as the attribute did.
fn duration_tokens(nanos: u64) -> TokenStream {
    let (unit, n) = match nanos {
        n if n % 1_000_000_000 == 0 => (quote!(from_secs), n / 1_000_000_000),
        n if n % 1_000_000 == 0 => (quote!(from_millis), n / 1_000_000),
        n if n % 1_000 == 0 => (quote!(from_micros), n / 1_000),
        n => (quote!(from_nanos), n),
    };
    let n = proc_macro2::Literal::u64_unsuffixed(n);
    quote!(::core::time::Duration::#unit(#n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(text: &str) -> LitStr {
        LitStr::new(text, proc_macro2::Span::call_site())
    }

    #[test]
    fn durations_take_a_whole_number_and_a_unit() {
        assert_eq!(duration(&lit("200ms")).unwrap(), 200_000_000);
        assert_eq!(duration(&lit("3s")).unwrap(), 3_000_000_000);
        assert_eq!(duration(&lit("15us")).unwrap(), 15_000);
        assert_eq!(duration(&lit("2m")).unwrap(), 120_000_000_000);
        for bad in ["0ms", "1.5s", "ms", "200", "200 ms", "-1s", "5h", "99999999999999999999s"] {
            assert!(duration(&lit(bad)).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn percentiles_and_percents_have_at_most_one_decimal() {
        assert_eq!(tenths("95", 10, 999), Some(950));
        assert_eq!(tenths("99.9", 10, 999), Some(999));
        assert_eq!(tenths("100", 10, 999), None);
        assert_eq!(tenths("0.5", 10, 999), None);
        assert_eq!(tenths("99.99", 10, 999), None);
        assert_eq!(tenths("0", 1, 1000), None);
        assert_eq!(tenths("100", 1, 1000), Some(1000));
        assert_eq!(tenths("x", 1, 1000), None);
    }
}

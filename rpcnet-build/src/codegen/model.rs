//! The model of a service: what each method sends and returns, parsed from the trait and
//! checked by the rules of `validate.rs`. Keeps the original syn nodes for spans.

use proc_macro2::Span;
use quote::format_ident;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Ident, ItemTrait, Pat, ReturnType, TraitItem, TraitItemFn, Type};

use super::policy::{self, Policy};
use super::validate::{self, Errors};

/// A service trait, ready to expand.
pub(crate) struct Service<'a> {
    pub(crate) original: &'a ItemTrait,
    pub(crate) name: &'a Ident,
    pub(crate) methods: Vec<Method<'a>>,
}

/// One `async fn` of the trait.
pub(crate) struct Method<'a> {
    pub(crate) original: &'a TraitItemFn,
    pub(crate) name: &'a Ident,
    /// Attributes passed through to every generated piece (docs, `cfg`, lint levels).
    pub(crate) attrs: Vec<Attribute>,
    /// `#[cfg]` attributes only: they follow the method into the server's routes.
    pub(crate) cfgs: Vec<Attribute>,
    pub(crate) request: Request<'a>,
    pub(crate) response: Response<'a>,
    /// What its `#[rpc(...)]` attributes say: idempotence, deadline, retries, hedging,
    /// hash key (`policy.rs`).
    pub(crate) policy: Policy,
}

/// An argument as declared.
pub(crate) struct Arg<'a> {
    pub(crate) name: Ident,
    pub(crate) ty: &'a Type,
}

/// What the client sends.
pub(crate) enum Request<'a> {
    /// Plain arguments, sent together as one message (a tuple).
    Args(Vec<Arg<'a>>),
    /// One `RpcStream<Item>` argument: a stream of messages.
    Stream { arg: Arg<'a>, item: &'a Type },
}

/// What the server returns.
pub(crate) enum Response<'a> {
    /// A value (`()` when the method declares no return type).
    Value(Option<&'a Type>),
    /// `Result<T, E>`: `E` is the service's own error, sent typed.
    Fallible { ok: &'a Type, err: &'a Type },
    /// `RpcStream<Item>`: a stream of messages.
    Stream { item: &'a Type },
}

impl Method<'_> {
    /// The wire name: `"Service.method"`.
    pub(crate) fn wire_name(&self, service: &Ident) -> String {
        format!("{service}.{}", self.name)
    }

    /// The name of the constant holding the wire name, on the generated client.
    pub(crate) fn const_name(&self) -> Ident {
        format_ident!("METHOD_{}", self.name.to_string().to_uppercase())
    }

    /// One request message, one response message.
    pub(crate) fn is_unary(&self) -> bool {
        matches!(self.request, Request::Args(_)) && !matches!(self.response, Response::Stream { .. })
    }

    /// The name of the constant holding its `MethodPolicy`, on the generated client.
    pub(crate) fn policy_name(&self) -> Ident {
        format_ident!("POLICY_{}", self.name.to_string().to_uppercase())
    }
}

impl<'a> Service<'a> {
    /// Parses and checks a trait; every problem is reported, each at its own tokens.
    pub(crate) fn from_trait(original: &'a ItemTrait) -> syn::Result<Self> {
        let mut errors = Errors::default();
        validate::service_shape(original, &mut errors);
        let mut methods: Vec<Method<'a>> = Vec::new();
        for item in &original.items {
            match item {
                TraitItem::Fn(method) => {
                    if let Some(method) = Method::parse(method, &mut errors) {
                        methods.push(method);
                    }
                }
                other => errors.push(validate::only_methods(other)),
            }
        }
        validate::unique_names(&methods, &mut errors);
        validate::no_generated_name_clash(&original.ident, &methods, &mut errors);
        errors.finish()?;
        Ok(Self { original, name: &original.ident, methods })
    }
}

impl<'a> Method<'a> {
    fn parse(original: &'a TraitItemFn, errors: &mut Errors) -> Option<Self> {
        let before = errors.len();
        validate::method_signature(original, errors);
        let policy = policy::parse(&original.attrs, errors);
        let attrs: Vec<Attribute> = original.attrs.iter().filter(|a| !a.path().is_ident("rpc")).cloned().collect();
        let cfgs = attrs.iter().filter(|a| a.path().is_ident("cfg")).cloned().collect();

        let mut args = Vec::new();
        for input in original.sig.inputs.iter().skip(1) {
            let FnArg::Typed(typed) = input else { continue };
            let name = match &*typed.pat {
                Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => ident.ident.clone(),
                other => {
                    errors.push(syn::Error::new(
                        other.span(),
                        "rpc method arguments need a plain name, like `value: Type`: patterns cannot be sent",
                    ));
                    continue;
                }
            };
            validate::owned_type(&typed.ty, "arguments", errors);
            args.push(Arg { name, ty: &typed.ty });
        }
        let request = request_shape(args, errors);
        let response = response_shape(&original.sig.output, errors);
        if let (Some(request), Some(response)) = (&request, &response) {
            let streaming =
                !matches!((request, response), (Request::Args(_), Response::Value(_) | Response::Fallible { .. }));
            let names: Vec<String> = match request {
                Request::Args(args) => args.iter().map(|a| a.name.to_string()).collect(),
                Request::Stream { .. } => Vec::new(),
            };
            policy.check(streaming, &names, errors);
        }
        (errors.len() == before).then_some(Self {
            original,
            name: &original.sig.ident,
            attrs,
            cfgs,
            request: request?,
            response: response?,
            policy,
        })
    }
}

fn request_shape<'a>(args: Vec<Arg<'a>>, errors: &mut Errors) -> Option<Request<'a>> {
    let streams: Vec<usize> = (0..args.len()).filter(|&i| stream_item(args[i].ty).is_some()).collect();
    for arg in &args {
        validate::stream_only_at_top(arg.ty, stream_item(arg.ty).is_some(), errors);
    }
    match streams.as_slice() {
        [] => Some(Request::Args(args)),
        [index] if args.len() == 1 => {
            let arg = args.into_iter().nth(*index).expect("index from the same vector");
            let item = stream_item(arg.ty).expect("checked above");
            Some(Request::Stream { arg, item })
        }
        [index, ..] => {
            errors.push(syn::Error::new(
                args[*index].ty.span(),
                "a streaming request takes its `RpcStream` as the only argument: send other values inside the stream's messages",
            ));
            None
        }
    }
}

fn response_shape<'a>(output: &'a ReturnType, errors: &mut Errors) -> Option<Response<'a>> {
    let ty = match output {
        ReturnType::Default => return Some(Response::Value(None)),
        ReturnType::Type(_, ty) => &**ty,
    };
    validate::owned_type(ty, "results", errors);
    if let Some(item) = stream_item(ty) {
        validate::stream_only_at_top(item, false, errors);
        return Some(Response::Stream { item });
    }
    if let Some((ok, err)) = result_types(ty) {
        validate::stream_only_at_top(ok, false, errors);
        validate::stream_only_at_top(err, false, errors);
        return Some(Response::Fallible { ok, err });
    }
    validate::stream_only_at_top(ty, false, errors);
    Some(Response::Value(Some(ty)))
}

/// The item type if `ty` is `RpcStream<Item>` (by its last path segment).
pub(crate) fn stream_item(ty: &Type) -> Option<&Type> {
    let args = generic_args(ty, "RpcStream")?;
    let [item] = args.as_slice() else { return None };
    Some(item)
}

/// `(T, E)` if `ty` is `Result<T, E>` (by its last path segment, with two arguments).
fn result_types(ty: &Type) -> Option<(&Type, &Type)> {
    let args = generic_args(ty, "Result")?;
    let [ok, err] = args.as_slice() else { return None };
    Some((ok, err))
}

/// The type arguments of `ty` if it is a path ending in `name<...>`.
fn generic_args<'t>(ty: &'t Type, name: &str) -> Option<Vec<&'t Type>> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return Some(Vec::new()) };
    Some(
        args.args
            .iter()
            .filter_map(|arg| match arg {
                syn::GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
    )
}

/// The span to blame for a method-level problem: its name.
pub(crate) fn method_span(method: &TraitItemFn) -> Span {
    method.sig.ident.span()
}

//! The one generator: a service trait in, the trait, `XServer<T>`, `XClient` and
//! `XClusterClient` out. `#[rpc_service]` and the `Builder` both call it. `model.rs` reads
//! the trait, `validate.rs` holds the rules, `expand.rs` and `cluster.rs` write the code.

mod client;
mod cluster;
mod expand;
mod model;
mod policy;
mod server;
mod validate;
mod wire;

pub use expand::Options;

use proc_macro2::TokenStream;
use syn::ItemTrait;

/// What `#[rpc_service(...)]` expands to: `attr` holds its options (`crate = "path"`),
/// `item` the trait.
///
/// ```
/// let tokens = rpcnet_build::codegen::expand(
///     quote::quote!(),
///     quote::quote!(pub trait Echo { async fn echo(&self, text: String) -> String; }),
/// ).unwrap();
/// assert!(tokens.to_string().contains("EchoClient"));
/// ```
pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand_with(attr, item, Options::default())
}

/// [`expand`], with `attr`'s options applied over `base` instead of the defaults: how
/// `rpcnet-build` passes its cluster strategy while reading the attribute as the macro does.
pub(crate) fn expand_with(attr: TokenStream, item: TokenStream, base: Options) -> syn::Result<TokenStream> {
    let options = parse_options(attr, base)?;
    let item: ItemTrait = syn::parse2(item).map_err(|err| {
        syn::Error::new(
            err.span(),
            "#[rpc_service] goes on a trait: `pub trait Calculator { async fn add(&self, a: i64, b: i64) -> i64; }`",
        )
    })?;
    expand_trait(&item, &options)
}

/// Expands one trait with the given options.
pub fn expand_trait(item: &ItemTrait, options: &Options) -> syn::Result<TokenStream> {
    let service = model::Service::from_trait(item)?;
    Ok(expand::Generator::new(&service, options).generate())
}

/// What `#[rpc_impl]` expands to: the impl block unchanged. The rpcnet 0.1 book marks the
/// impls of its services with it; here a service's trait methods are plain `async fn`s, so an
/// impl needs nothing, and the attribute only checks that it is on an impl block.
///
/// ```
/// let item = quote::quote!(impl Echo for Handler { async fn echo(&self, text: String) -> String { text } });
/// let tokens = rpcnet_build::codegen::expand_impl(quote::quote!(), item.clone()).unwrap();
/// assert_eq!(tokens.to_string(), item.to_string());
/// assert!(rpcnet_build::codegen::expand_impl(quote::quote!(), quote::quote!(struct Handler;)).is_err());
/// ```
pub fn expand_impl(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if let Some(token) = attr.into_iter().next() {
        return Err(syn::Error::new(token.span(), "#[rpc_impl] takes no options"));
    }
    syn::parse2::<syn::ItemImpl>(item.clone()).map_err(|err| {
        syn::Error::new(err.span(), "#[rpc_impl] goes on the impl of a service trait: `impl Echo for Handler { .. }`")
    })?;
    Ok(item)
}

/// What to emit beside the errors when expansion fails: the trait as the user wrote it, so
/// that `impl Trait for X` still finds it and the user sees one error, not a cascade. Only
/// what would itself fail to compile is removed: `#[rpc(...)]` attributes and argument
/// patterns (not allowed in methods without a body).
pub fn fallback(item: TokenStream) -> TokenStream {
    let Ok(mut item) = syn::parse2::<ItemTrait>(item.clone()) else { return item };
    for member in &mut item.items {
        let syn::TraitItem::Fn(method) = member else { continue };
        method.attrs.retain(|attr| !attr.path().is_ident("rpc"));
        for input in &mut method.sig.inputs {
            if let syn::FnArg::Typed(arg) = input
                && !matches!(&*arg.pat, syn::Pat::Ident(_))
            {
                *arg.pat = syn::parse_quote!(_);
            }
        }
    }
    quote::ToTokens::into_token_stream(item)
}

/// `crate = "path"` and `codec = "path"`, or nothing.
fn parse_options(attr: TokenStream, mut options: Options) -> syn::Result<Options> {
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            let path: syn::LitStr = meta.value()?.parse()?;
            options.krate = path.parse()?;
            Ok(())
        } else if meta.path.is_ident("codec") {
            let path: syn::LitStr = meta.value()?.parse()?;
            options.codec = Some(path.parse()?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown option; #[rpc_service] takes `crate = \"path::to::rpcnet\"` and `codec = \"path::to::Codec\"`",
            ))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(options)
}

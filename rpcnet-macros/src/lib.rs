//! `#[rpc_service]` and `#[rpc_impl]`: shims over `rpcnet_build::codegen`, which holds all
//! the logic. Use them through `rpcnet::rpc_service` and `rpcnet::rpc_impl`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

/// Turns a trait into a typed rpc service. See `rpcnet::rpc_service`.
#[proc_macro_attribute]
pub fn rpc_service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = TokenStream2::from(item.clone());
    emit(rpcnet_build::codegen::expand(attr.into(), item.into()), || rpcnet_build::codegen::fallback(original))
}

/// Marks the impl of a service trait, as the rpcnet 0.1 book does; changes nothing. See
/// `rpcnet::rpc_impl`.
#[proc_macro_attribute]
pub fn rpc_impl(attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = TokenStream2::from(item.clone());
    emit(rpcnet_build::codegen::expand_impl(attr.into(), item.into()), || original)
}

/// The expansion, or its errors followed by what stands in for the item (so the user sees
/// those errors, not a cascade from a missing item).
fn emit(expanded: syn::Result<TokenStream2>, fallback: impl FnOnce() -> TokenStream2) -> TokenStream {
    match expanded {
        Ok(tokens) => tokens.into(),
        Err(err) => {
            let errors = err.to_compile_error();
            let fallback = fallback();
            quote::quote!(#errors #fallback).into()
        }
    }
}

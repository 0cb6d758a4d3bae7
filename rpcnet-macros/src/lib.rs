//! `#[rpc_service]` and `#[rpc_impl]`: shims over `rpcnet_build::codegen`, which holds all
//! the logic. Use them through `rpcnet::rpc_service` and `rpcnet::rpc_impl`.

use proc_macro::TokenStream;

/// Turns a trait into a typed rpc service. See `rpcnet::rpc_service`.
#[proc_macro_attribute]
pub fn rpc_service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    match rpcnet_build::codegen::expand(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(err) => {
            let errors = err.to_compile_error();
            let fallback = rpcnet_build::codegen::fallback(original);
            quote::quote!(#errors #fallback).into()
        }
    }
}

/// Marks the impl of a service trait, as the rpcnet 0.1 book does; changes nothing. See
/// `rpcnet::rpc_impl`.
#[proc_macro_attribute]
pub fn rpc_impl(attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    match rpcnet_build::codegen::expand_impl(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(err) => {
            let errors = err.to_compile_error();
            quote::quote!(#errors #original).into()
        }
    }
}

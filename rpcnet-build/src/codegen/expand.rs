//! Tokens for a service: the generator, which emits one item per method in a fixed order
//! (the trait here, the client's items in `client.rs`, the server's in `server.rs`). Runtime
//! items are named only through `<crate>::__private`; types the user wrote keep their spans,
//! so a type that cannot travel is underlined where it was written.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Path, Type};

use super::cluster;
use super::model::{Method, Request, Response, Service};

/// How to generate: where the runtime lives, the codec, and how the cluster client balances.
#[derive(Clone, Debug)]
pub struct Options {
    /// Path to the rpcnet crate in generated code. Default `::rpcnet`.
    pub krate: Path,
    /// The codec both sides use (a type implementing `rpcnet::codec::Codec + Default`).
    /// Default: `None`, the runtime's default codec (bincode).
    pub codec: Option<Path>,
    /// The `LoadBalancingStrategy` variant that `XClusterClient` uses unless told otherwise
    /// at run time. Default `LeastConnections` (the macro's); `rpcnet-build` sets it from
    /// `Builder::strategy`.
    pub cluster_strategy: Ident,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            krate: syn::parse_quote!(::rpcnet),
            codec: None,
            cluster_strategy: Ident::new("LeastConnections", proc_macro2::Span::call_site()),
        }
    }
}

/// The generator of one service.
pub(crate) struct Generator<'a> {
    pub(super) service: &'a Service<'a>,
    options: &'a Options,
    pub(super) krate: TokenStream,
    /// The codec type, as generated code names it.
    pub(super) codec: TokenStream,
    pub(super) server: Ident,
    pub(super) client: Ident,
}

impl<'a> Generator<'a> {
    pub(crate) fn new(service: &'a Service<'a>, options: &'a Options) -> Self {
        let krate = options.krate.to_token_stream();
        let codec = match &options.codec {
            Some(codec) => codec.to_token_stream(),
            None => quote!(#krate::__private::DefaultCodec),
        };
        let server = format_ident!("{}Server", service.name);
        let client = format_ident!("{}Client", service.name);
        Self { service, options, krate, codec, server, client }
    }

    /// Every generated item, in order.
    pub(crate) fn generate(&self) -> TokenStream {
        let items = [
            self.service_trait(),
            self.server_struct(),
            self.client_struct(),
            self.client_methods(),
            self.cluster_client(),
            self.impls(),
        ];
        quote!(#(#items)*)
    }

    /// The trait, its `async fn`s written as `fn -> impl Future + Send` so servers can spawn them.
    fn service_trait(&self) -> TokenStream {
        let krate = &self.krate;
        let original = self.service.original;
        let (attrs, vis, name, supertraits) = (&original.attrs, &original.vis, &original.ident, &original.supertraits);
        let colon = original.colon_token;
        let methods = self.service.methods.iter().map(|method| {
            let attrs = &method.attrs;
            let name = method.name;
            let args = declared_args(method);
            let output = match &method.original.sig.output {
                syn::ReturnType::Default => quote!(()),
                syn::ReturnType::Type(_, ty) => ty.to_token_stream(),
            };
            quote! {
                #(#attrs)*
                fn #name(&self, #(#args),*)
                    -> impl #krate::__private::Future<Output = #output> + #krate::__private::Send;
            }
        });
        quote! {
            #(#attrs)*
            #vis trait #name #colon #supertraits {
                #(#methods)*
            }
        }
    }

    fn cluster_client(&self) -> TokenStream {
        let vis = &self.service.original.vis;
        cluster::item(&self.krate, vis, self.service.name, &self.client, &self.options.cluster_strategy)
    }

    /// Impls and compile-time checks, fenced in `const _: () = { ... };` so that nothing
    /// leaks into the user's namespace.
    fn impls(&self) -> TokenStream {
        let krate = &self.krate;
        let (name, server, client) = (self.service.name, &self.server, &self.client);
        let routes = self.service.methods.iter().map(|method| self.route(method));
        let bounds = self.message_bounds(&self.service.methods);
        let cluster_impls = cluster::impls(krate, name, client);
        quote! {
            const _: () = {
                impl<T> #krate::__private::Service for #server<T>
                where
                    T: #name + #krate::__private::Send + #krate::__private::Sync + 'static,
                    #(#bounds,)*
                {
                    fn routes(self) -> #krate::__private::Routes {
                        let mut routes = #krate::__private::Routes::new();
                        let service = self.service;
                        #(#routes)*
                        let _ = service;
                        routes
                    }
                }

                impl #krate::__private::TypedClient for #client {
                    fn from_channel(channel: #krate::__private::Channel) -> Self {
                        Self::from_channel(channel)
                    }
                }

                impl ::core::convert::From<#krate::__private::RpcClient> for #client {
                    fn from(client: #krate::__private::RpcClient) -> Self {
                        Self::from_channel(#krate::__private::Channel::single(client))
                    }
                }

                #cluster_impls
            };
        }
    }

    /// `Type: RpcMessage` for every type that travels, spanned where the type was written:
    /// a type that cannot travel gets one error there, and the code using it none.
    pub(super) fn message_bounds<'m>(&self, methods: impl IntoIterator<Item = &'m Method<'m>>) -> Vec<TokenStream> {
        let mut seen = std::collections::BTreeSet::new();
        methods
            .into_iter()
            .flat_map(message_types)
            .filter(|ty| seen.insert(ty.to_token_stream().to_string()))
            .map(|ty| {
                let krate = respan(self.krate.clone(), ty.span());
                quote_spanned!(ty.span()=> #ty: #krate::__private::RpcMessage)
            })
            .collect()
    }
}

/// `tokens` with every span set to `span`, so that rustc reports an error about them there.
fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner = proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// The arguments as the trait declares them, without patterns or `mut`.
fn declared_args(method: &Method<'_>) -> Vec<TokenStream> {
    match &method.request {
        Request::Args(args) => args
            .iter()
            .map(|a| {
                let (name, ty) = (&a.name, a.ty);
                quote!(#name: #ty)
            })
            .collect(),
        Request::Stream { arg, .. } => {
            let (name, ty) = (&arg.name, arg.ty);
            vec![quote!(#name: #ty)]
        }
    }
}

/// Every type that travels, to check at compile time where it was written.
fn message_types<'m>(method: &'m Method<'m>) -> Vec<&'m Type> {
    let mut types = Vec::new();
    match &method.request {
        Request::Args(args) => types.extend(args.iter().map(|a| a.ty)),
        Request::Stream { item, .. } => types.push(*item),
    }
    match &method.response {
        Response::Value(ty) => types.extend(*ty),
        Response::Fallible { ok, err } => types.extend([*ok, *err]),
        Response::Stream { item } => types.push(*item),
    }
    types
}

//! How a type travels, decided here once: most types travel as themselves; `Vec<u8>`
//! travels wrapped in `ByteBuf`, which serde writes as bytes (the same bincode bytes as a
//! sequence of `u8`, made with one copy instead of one serializer call per byte). Every
//! conversion the generator writes goes through these helpers, which emit nothing extra for
//! types that travel as themselves.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Type;

/// A type in a position where it travels.
pub(crate) struct Wire<'a> {
    ty: &'a Type,
    bytes: bool,
}

impl<'a> Wire<'a> {
    pub(crate) fn of(ty: &'a Type) -> Self {
        Self { ty, bytes: is_byte_vec(ty) }
    }

    /// The type as it is encoded and decoded.
    pub(crate) fn ty(&self, krate: &TokenStream) -> TokenStream {
        if self.bytes {
            quote!(#krate::__private::ByteBuf)
        } else {
            let ty = self.ty;
            quote!(#ty)
        }
    }

    /// `value` (of the declared type) as the encoded type.
    pub(crate) fn wrap(&self, krate: &TokenStream, value: TokenStream) -> TokenStream {
        if self.bytes { quote!(#krate::__private::ByteBuf(#value)) } else { value }
    }

    /// `value` (of the encoded type) as the declared type.
    pub(crate) fn unwrap(&self, value: TokenStream) -> TokenStream {
        if self.bytes { quote!(#value.0) } else { value }
    }

    /// A stream of the declared type as a stream of the encoded type.
    pub(crate) fn wrap_each(&self, krate: &TokenStream, stream: TokenStream) -> TokenStream {
        self.map_each(krate, stream, self.wrap(krate, quote!(message)))
    }

    /// A stream of the encoded type as a stream of the declared type.
    pub(crate) fn unwrap_each(&self, krate: &TokenStream, stream: TokenStream) -> TokenStream {
        self.map_each(krate, stream, self.unwrap(quote!(message)))
    }

    fn map_each(&self, krate: &TokenStream, stream: TokenStream, message: TokenStream) -> TokenStream {
        if self.bytes { quote!(#stream.map_messages(|message| #krate::__private::Ok(#message))) } else { stream }
    }

    /// A `Result` whose `Ok` holds the encoded type (a call's outcome), as one holding the
    /// declared type.
    pub(crate) fn unwrap_ok(&self, result: TokenStream) -> TokenStream {
        if self.bytes {
            let value = self.unwrap(quote!(value));
            quote!(#result.map(|value| #value))
        } else {
            result
        }
    }
}

impl Wire<'_> {
    /// A `Result` whose `Ok` holds a stream of the encoded type (a streaming call's
    /// outcome), as one holding a stream of the declared type.
    pub(crate) fn unwrap_stream_ok(&self, krate: &TokenStream, result: TokenStream) -> TokenStream {
        if self.bytes {
            let each = self.unwrap_each(krate, quote!(stream));
            quote!(#result.map(|stream| #each))
        } else {
            result
        }
    }
}

/// The two sides of a `Result<T, E>` a method returns.
pub(crate) struct Fallible<'a> {
    pub(crate) ok: Wire<'a>,
    pub(crate) err: Wire<'a>,
}

impl<'a> Fallible<'a> {
    pub(crate) fn of(ok: &'a Type, err: &'a Type) -> Self {
        Self { ok: Wire::of(ok), err: Wire::of(err) }
    }

    fn wrapped(&self) -> bool {
        self.ok.bytes || self.err.bytes
    }

    /// A handler's `Result<T, E>` as the `Result` of encoded types.
    pub(crate) fn wrap(&self, krate: &TokenStream, result: TokenStream) -> TokenStream {
        if !self.wrapped() {
            return result;
        }
        let (ok, err) = (self.ok.wrap(krate, quote!(value)), self.err.wrap(krate, quote!(error)));
        quote!(#result.map(|value| #ok).map_err(|error| #err))
    }

    /// A call's `Result<Result<T, E>, RpcError>` of encoded types as one of declared types.
    pub(crate) fn unwrap_call(&self, call: TokenStream) -> TokenStream {
        if !self.wrapped() {
            return call;
        }
        let (ok, err) = (self.ok.unwrap(quote!(value)), self.err.unwrap(quote!(error)));
        quote!(#call.map(|result| result.map(|value| #ok).map_err(|error| #err)))
    }
}

/// `Vec<u8>`, written as a path ending in `Vec` with the single argument `u8`.
fn is_byte_vec(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    let Some(last) = path.path.segments.last() else { return false };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return false };
    last.ident == "Vec"
        && args.args.len() == 1
        && matches!(&args.args[0], syn::GenericArgument::Type(Type::Path(p)) if p.path.is_ident("u8"))
}

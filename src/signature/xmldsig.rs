//! XML-DSig 1.0/1.1 verification of enveloped and enveloping signatures in an XML data
//! part (spec §7), resisting signature wrapping: every `Signature` element must verify,
//! identifiers (`Id`, `ID`, `id`) must be unique, each signature must cover the document
//! element (enveloped) or the `Object` handed on (enveloping), and the result says which
//! of the two was verified so that the caller hands on exactly that.
//!
//! Supported: references `URI=""` and `URI="#id"`; transforms enveloped-signature and the
//! C14N variants of `xml/c14n.rs`; digests SHA-256/384/512 (SHA-1 with legacy
//! allowed); signature methods RSA PKCS#1 v1.5 and ECDSA P-256/P-384 (SHA-2; the value is
//! `r || s`); the signer certificate from `KeyInfo/X509Data/X509Certificate`. Anything
//! else (XPath, XSLT, base64 transforms, external or XPointer references, HMAC, a key
//! without a certificate) is refused as unsupported.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use super::algorithms::{EcdsaEncoding, Hash, SigAlg};
use super::error::malformed;
use super::trust::Chain;
use super::xml::c14n::{DigestSink, Kind, Method, Subset, canonicalize};
use super::xml::reuse;
use super::xml::tree::{Document, Node, parse};
use super::{SignatureError, VerifiedContent, VerifiedSigner, VerifyOptions};

/// The XML-DSig namespace.
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The namespace of exclusive C14N's `InclusiveNamespaces`.
const EXC_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// The enveloped-signature transform.
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// What the signatures of an XML part established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlVerified {
    /// The signer of each `Signature` element, in document order.
    pub signers: Vec<VerifiedSigner>,
    /// What was signed, and so what may be handed on.
    pub content: VerifiedContent,
}

/// Verifies every XML-DSig signature in `bytes`. `Ok(None)` if there is none.
pub fn verify_xml(
    bytes: &[u8],
    options: &VerifyOptions<'_>,
) -> Result<Option<XmlVerified>, SignatureError> {
    let doc = parse(bytes)?;
    let signatures: Vec<usize> = (0..doc.elements.len())
        .filter(|&i| doc.elements[i].is(DSIG, "Signature"))
        .collect();
    if signatures.is_empty() {
        return Ok(None);
    }
    let ids = identifiers(&doc)?;
    let mut signers = Vec::new();
    let mut coverage = Vec::new();
    for &signature in &signatures {
        let (signer, targets) = verify_signature(&doc, &ids, signature, options)?;
        signers.push(signer);
        coverage.push((signature, targets));
    }

    let root = &doc.elements[Document::ROOT];
    let content = if root.is(DSIG, "Signature") {
        // Enveloping: hand on the first Object of the root signature that it references.
        let (_, root_targets) = &coverage[0];
        let object = root_targets
            .iter()
            .copied()
            .find(|&t| doc.elements[t].parent == Some(Document::ROOT))
            .filter(|&t| doc.elements[t].is(DSIG, "Object"))
            .ok_or_else(|| {
                SignatureError::Wrapping(
                    "the enveloping signature references no Object of its own".into(),
                )
            })?;
        for (signature, targets) in &coverage[1..] {
            if !targets.iter().any(|&t| doc.is_within(t, object)) {
                return Err(uncovered(&doc, *signature, object));
            }
        }
        VerifiedContent::Extracted(object_content(&doc, object)?)
    } else {
        for (signature, targets) in &coverage {
            if !targets.contains(&Document::ROOT) {
                return Err(uncovered(&doc, *signature, Document::ROOT));
            }
        }
        VerifiedContent::AsReceived
    };
    Ok(Some(XmlVerified { signers, content }))
}

/// The error for a signature that does not cover what would be handed on.
fn uncovered(doc: &Document<'_>, signature: usize, wanted: usize) -> SignatureError {
    SignatureError::Wrapping(format!(
        "signature {} does not cover <{}>, which would be handed on",
        signature_name(doc, signature),
        doc.elements[wanted].qname
    ))
}

/// How a signature is named in reasons: its Id, or its position.
fn signature_name(doc: &Document<'_>, signature: usize) -> String {
    match doc.attr(signature, "Id") {
        Some(id) => format!("{id:?}"),
        None => {
            let n = (0..=signature)
                .filter(|&i| doc.elements[i].is(DSIG, "Signature"))
                .count();
            format!("#{n}")
        }
    }
}

/// Every `Id`, `ID` and `id` attribute value (any prefix, so also `xml:id` and `wsu:Id`)
/// with its element, sorted by value for lookup; a value used by two elements is refused,
/// as it would make a reference ambiguous (the classic wrapping attack). A sorted vector
/// rather than a hash map: one allocation, no hashing, and a document has few identifiers.
fn identifiers<'d>(doc: &'d Document<'_>) -> Result<Ids<'d>, SignatureError> {
    let mut ids = Vec::new();
    for index in 0..doc.elements.len() {
        for attr in doc.attrs(index) {
            if matches!(attr.local(), "Id" | "ID" | "id") {
                ids.push((&*attr.value, index));
            }
        }
    }
    ids.sort_unstable();
    // One element may carry the same value twice (say `Id` and `xml:id`).
    ids.dedup();
    if let Some(pair) = ids.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(SignatureError::Wrapping(format!(
            "identifier {:?} is used by more than one element",
            pair[0].0
        )));
    }
    Ok(Ids(ids))
}

/// The identifiers of a document: (value, element) sorted by value, each value once.
struct Ids<'d>(Vec<(&'d str, usize)>);

impl Ids<'_> {
    /// The element identified by `id`.
    fn get(&self, id: &str) -> Option<usize> {
        self.0
            .binary_search_by(|&(value, _)| value.cmp(id))
            .ok()
            .map(|at| self.0[at].1)
    }
}

/// The single `ds:local` child of `parent`, or an error naming what is missing or repeated.
fn child(doc: &Document<'_>, parent: usize, local: &str) -> Result<usize, SignatureError> {
    let mut found = children(doc, parent, local);
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(malformed!(
            "<{}> has no {local}",
            doc.elements[parent].local()
        )),
        (Some(_), Some(_)) => Err(malformed!(
            "<{}> has more than one {local}",
            doc.elements[parent].local()
        )),
    }
}

/// The `ds:local` children of `parent`.
fn children<'d>(
    doc: &'d Document<'_>,
    parent: usize,
    local: &'d str,
) -> impl Iterator<Item = usize> + 'd {
    doc.child_elements(parent)
        .filter(move |&c| doc.elements[c].is(DSIG, local))
}

/// The `Algorithm` attribute of the `ds:local` child of `parent`.
fn algorithm<'d>(
    doc: &'d Document<'_>,
    parent: usize,
    local: &str,
) -> Result<&'d str, SignatureError> {
    let el = child(doc, parent, local)?;
    doc.attr(el, "Algorithm")
        .ok_or_else(|| malformed!("{local} without Algorithm"))
}

/// Base64 content of an element, white space ignored.
fn base64_text(doc: &Document<'_>, el: usize) -> Result<Vec<u8>, SignatureError> {
    let text = doc.text(el);
    let decoded = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        STANDARD.decode(compact)
    } else {
        STANDARD.decode(text.as_bytes())
    };
    decoded.map_err(|e| malformed!("<{}> is not base64: {e}", doc.elements[el].local()))
}

/// Calls `f` with the base64 content of an element, white space ignored. A value without
/// white space that fits (a digest, a signature of keys up to 6144 bits) is decoded on the
/// stack; anything else — white space, a larger value, a decoding error — goes through
/// [`base64_text`], so the outcome is the same either way.
fn with_base64<R>(
    doc: &Document<'_>,
    el: usize,
    f: impl FnOnce(&[u8]) -> Result<R, SignatureError>,
) -> Result<R, SignatureError> {
    let mut buffer = [0u8; 768];
    match STANDARD.decode_slice(doc.text(el).as_bytes(), &mut buffer) {
        Ok(len) => f(&buffer[..len]),
        Err(_) => f(&base64_text(doc, el)?),
    }
}

/// The canonicalisation an algorithm URI names, with the prefix list of its
/// `InclusiveNamespaces` child (exclusive C14N) read from `transform`.
fn c14n_method(doc: &Document<'_>, uri: &str, transform: usize) -> Option<Method> {
    let mut method = Method::from_uri(uri)?;
    if let Kind::Exclusive(list) = &mut method.kind {
        let inclusive = doc
            .child_elements(transform)
            .find(|&c| doc.elements[c].is(EXC_NS, "InclusiveNamespaces"));
        if let Some(prefixes) = inclusive.and_then(|el| doc.attr(el, "PrefixList")) {
            list.extend(prefixes.split_ascii_whitespace().map(|p| {
                if p == "#default" {
                    String::new()
                } else {
                    p.to_owned()
                }
            }));
        }
    }
    Some(method)
}

thread_local! {
    /// The buffer a thread canonicalises `SignedInfo` into, kept between verifications
    /// (emptied; see `xml/reuse.rs`).
    static SIGNED_INFO: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Verifies one `Signature` element: the signature value over its canonical `SignedInfo`,
/// every reference's digest and the signer's trust. Returns the signer and the element
/// each reference covers.
fn verify_signature(
    doc: &Document<'_>,
    ids: &Ids<'_>,
    signature: usize,
    options: &VerifyOptions<'_>,
) -> Result<(VerifiedSigner, Vec<usize>), SignatureError> {
    let signed_info = child(doc, signature, "SignedInfo")?;
    let c14n_uri = algorithm(doc, signed_info, "CanonicalizationMethod")?;
    let c14n_el = child(doc, signed_info, "CanonicalizationMethod")?;
    let c14n = c14n_method(doc, c14n_uri, c14n_el).ok_or_else(|| {
        SignatureError::UnsupportedAlgorithm(format!("canonicalisation {c14n_uri}"))
    })?;
    let method_uri = algorithm(doc, signed_info, "SignatureMethod")?;
    let sig_alg = SigAlg::from_xml_uri(method_uri).ok_or_else(|| {
        SignatureError::UnsupportedAlgorithm(format!("signature method {method_uri}"))
    })?;
    sig_alg.hash.allowed(options.allow_legacy_sha1)?;

    // The signer's certificate must be trusted (this also yields its key), then the
    // signature over SignedInfo must verify with it.
    let chain = signer_chain(doc, signature, options)?;
    let key = &chain.key;
    let value = child(doc, signature, "SignatureValue")?;
    let mut canonical: Vec<u8> = reuse::take(&SIGNED_INFO);
    let verified = with_base64(doc, value, |value| {
        // Room for a typical SignedInfo, so that it is not regrown piece by piece.
        canonical.reserve(2048);
        canonicalize(
            doc,
            Subset::Element(signed_info),
            None,
            &c14n,
            &mut canonical,
        )?;
        key.verify(sig_alg, EcdsaEncoding::Fixed, &canonical, value)
    });
    reuse::give(&SIGNED_INFO, |spare| reuse::keep(spare, canonical));
    verified.map_err(|e| match e {
        SignatureError::BadSignature(_) => SignatureError::BadSignature(format!(
            "the SignatureValue of signature {} does not verify with its certificate",
            signature_name(doc, signature)
        )),
        other => other,
    })?;

    let mut targets = Vec::new();
    let references: Vec<usize> = children(doc, signed_info, "Reference").collect();
    if references.is_empty() {
        return Err(malformed!("SignedInfo has no Reference"));
    }
    for reference in references {
        targets.push(verify_reference(doc, ids, signature, reference, options)?);
    }
    // Unsigned Objects inside a signature could carry content a receiver mistakes for
    // signed content.
    for object in children(doc, signature, "Object") {
        if !targets.contains(&object) {
            return Err(SignatureError::Wrapping(format!(
                "signature {} holds an Object it does not sign",
                signature_name(doc, signature)
            )));
        }
    }
    Ok((chain.signer.clone(), targets))
}

/// Checks one `Reference`'s digest; returns the element it covers.
fn verify_reference(
    doc: &Document<'_>,
    ids: &Ids<'_>,
    signature: usize,
    reference: usize,
    options: &VerifyOptions<'_>,
) -> Result<usize, SignatureError> {
    let uri = doc
        .attr(reference, "URI")
        .ok_or_else(|| SignatureError::UnsupportedAlgorithm("a Reference without URI".into()))?;
    let (subset, target) = match uri {
        "" => (Subset::Document, Document::ROOT),
        _ => match uri.strip_prefix('#') {
            Some(id) if !id.is_empty() && !id.contains('(') => {
                let target = ids
                    .get(id)
                    .ok_or_else(|| malformed!("Reference URI {uri:?} names no element"))?;
                (Subset::Element(target), target)
            }
            _ => {
                return Err(SignatureError::UnsupportedAlgorithm(format!(
                    "Reference URI {uri:?} (only \"\" and \"#id\" are supported)"
                )));
            }
        },
    };

    let mut excluded = None;
    let mut method = None;
    if let Some(transforms) = children(doc, reference, "Transforms").next() {
        for transform in children(doc, transforms, "Transform") {
            let alg = doc
                .attr(transform, "Algorithm")
                .ok_or_else(|| malformed!("Transform without Algorithm"))?;
            if method.is_some() {
                return Err(SignatureError::UnsupportedAlgorithm(format!(
                    "transform {alg} after canonicalisation"
                )));
            }
            if alg == ENVELOPED {
                excluded = Some(signature);
            } else {
                let m = c14n_method(doc, alg, transform).ok_or_else(|| {
                    SignatureError::UnsupportedAlgorithm(format!("transform {alg}"))
                })?;
                method = Some(m);
            }
        }
    }
    // A same-document reference drops comments, whatever the canonicalisation says; the
    // default conversion of a node-set to octets is C14N 1.0.
    let mut method = method.unwrap_or(Method {
        kind: Kind::Inclusive10,
        with_comments: false,
    });
    method.with_comments = false;

    let digest_uri = algorithm(doc, reference, "DigestMethod")?;
    let hash = Hash::from_xml_uri(digest_uri)
        .ok_or_else(|| SignatureError::UnsupportedAlgorithm(format!("digest {digest_uri}")))?
        .allowed(options.allow_legacy_sha1)?;
    with_base64(doc, child(doc, reference, "DigestValue")?, |expected| {
        let mut sink = DigestSink::new(hash.ring());
        canonicalize(doc, subset, excluded, &method, &mut sink)?;
        if sink.finish().as_ref() != expected {
            return Err(SignatureError::BadDigest(format!(
                "the content referenced by {uri:?} in signature {} was altered",
                signature_name(doc, signature)
            )));
        }
        Ok(())
    })?;
    Ok(target)
}

/// The trusted chain of the signer whose certificates `KeyInfo/X509Data` carries, taken
/// from the trust's cache by the certificates' text when the same signer was seen before.
fn signer_chain(
    doc: &Document<'_>,
    signature: usize,
    options: &VerifyOptions<'_>,
) -> Result<Arc<Chain>, SignatureError> {
    let carried = certificate_elements(doc, signature).map(|cert| match doc.text(cert) {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    });
    options.trust.verify_carried(carried, options.at, || {
        let (leaf, others) = certificates(doc, signature)?;
        options.trust.verify_key(&leaf, &others, options.at)
    })
}

/// The `KeyInfo/X509Data/X509Certificate` elements of `signature`, in document order.
fn certificate_elements<'d>(
    doc: &'d Document<'_>,
    signature: usize,
) -> impl Iterator<Item = usize> + 'd {
    children(doc, signature, "KeyInfo")
        .flat_map(move |key_info| children(doc, key_info, "X509Data"))
        .flat_map(move |data| children(doc, data, "X509Certificate"))
}

/// The certificates of `KeyInfo/X509Data`: the signer's (the one that issued none of the
/// others) and the rest, as chain candidates.
fn certificates(
    doc: &Document<'_>,
    signature: usize,
) -> Result<(Vec<u8>, Vec<Vec<u8>>), SignatureError> {
    let mut ders: Vec<Vec<u8>> = certificate_elements(doc, signature)
        .map(|cert| base64_text(doc, cert))
        .collect::<Result<_, _>>()?;
    if ders.len() == 1 {
        return Ok((ders.remove(0), Vec::new()));
    }
    let parsed: Vec<X509Certificate<'_>> = ders
        .iter()
        .map(|der| {
            X509Certificate::from_der(der)
                .map(|(_, c)| c)
                .map_err(|e| malformed!("X509Certificate: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let leaves: Vec<usize> = (0..parsed.len())
        .filter(|&i| {
            !parsed
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other.issuer().as_raw() == parsed[i].subject().as_raw())
        })
        .collect();
    match leaves[..] {
        [leaf] => {
            let mut rest = ders.clone();
            let leaf_der = rest.remove(leaf);
            Ok((leaf_der, rest))
        }
        [] if parsed.is_empty() => Err(SignatureError::UntrustedSigner(
            "the signature carries no X509Certificate".into(),
        )),
        _ => Err(malformed!(
            "cannot tell the signer among the certificates in KeyInfo"
        )),
    }
}

/// What an enveloping signature hands on: the exclusive canonical form of the signed
/// Object's one element, or its text if it holds no element.
fn object_content(doc: &Document<'_>, object: usize) -> Result<Vec<u8>, SignatureError> {
    let elements: Vec<usize> = doc.child_elements(object).collect();
    let has_text = doc
        .children(object)
        .iter()
        .any(|n| matches!(n, Node::Text(t) if !t.trim().is_empty()));
    match (&elements[..], has_text) {
        ([one], false) => {
            let mut out = Vec::new();
            let method = Method {
                kind: Kind::Exclusive(Vec::new()),
                with_comments: false,
            };
            canonicalize(doc, Subset::Element(*one), None, &method, &mut out)?;
            Ok(out)
        }
        ([], _) => Ok(doc.text(object).into_owned().into_bytes()),
        _ => Err(malformed!(
            "the signed Object must hold one element or only text"
        )),
    }
}

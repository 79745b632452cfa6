//! The XML S3 speaks: a small element tree for request documents
//! (CreateBucketConfiguration, CompleteMultipartUpload, Delete) read with
//! quick-xml, and a writer for responses.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::S3Error;

/// The namespace of every S3 response document.
pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// An element: local name, text, children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

fn local(name: &[u8]) -> String {
    let n = match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(n).into_owned()
}

/// Parses a request document; anything not well-formed is `MalformedXML`.
pub fn parse(body: &[u8]) -> Result<Element, S3Error> {
    let mut reader = Reader::from_reader(body);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let mut buf = Vec::new();
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|_| S3Error::MalformedXml)?;
        match ev {
            Event::Start(e) => stack.push(Element {
                name: local(e.name().as_ref()),
                ..Element::default()
            }),
            Event::Empty(e) => {
                let el = Element {
                    name: local(e.name().as_ref()),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|_| S3Error::MalformedXml)?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or(S3Error::MalformedXml)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(S3Error::MalformedXml);
    }
    root.ok_or(S3Error::MalformedXml)
}

/// Escapes text for element content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// A response document being written.
pub struct Writer {
    out: String,
}

impl Writer {
    /// A document whose root element is `root`, in S3's namespace.
    pub fn new(root: &str) -> Writer {
        Writer {
            out: format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{NS}\">"),
        }
    }

    /// A document without the namespace (error documents).
    pub fn bare(root: &str) -> Writer {
        Writer {
            out: format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}>"),
        }
    }

    pub fn open(&mut self, name: &str) -> &mut Writer {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Writer {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name>text</name>`, escaped.
    pub fn elem(&mut self, name: &str, text: &str) -> &mut Writer {
        self.open(name);
        self.out.push_str(&escape(text));
        self.close(name)
    }

    /// Finishes the document with `</root>`.
    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_complete_request() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><ETag>"a&amp;b"</ETag><PartNumber>1</PartNumber></Part>
  <Part><ETag>c</ETag><PartNumber>2</PartNumber></Part>
</CompleteMultipartUpload>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "CompleteMultipartUpload");
        let parts: Vec<_> = root
            .all("Part")
            .map(|p| (p.text_of("PartNumber").unwrap(), p.text_of("ETag").unwrap()))
            .collect();
        assert_eq!(parts, vec![("1", "\"a&b\""), ("2", "c")]);
        assert_eq!(parse(b"<a><b></a>"), Err(S3Error::MalformedXml));
        assert_eq!(parse(b""), Err(S3Error::MalformedXml));
    }

    #[test]
    fn writes_escaped() {
        let mut w = Writer::new("R");
        w.elem("Key", "a<b>&'\"");
        assert_eq!(
            w.finish("R"),
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"{NS}\"><Key>a&lt;b&gt;&amp;&apos;&quot;</Key></R>")
        );
    }
}

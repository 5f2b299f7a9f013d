import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The few S3 XML documents bosbackup reads, parsed with Foundation's `XMLParser` into a
/// small element tree. Namespaces are ignored (S3 puts everything in one default namespace).
struct S3XMLElement {
    var name: String
    var text: String = ""
    var children: [S3XMLElement] = []

    func child(_ name: String) -> S3XMLElement? { children.first { $0.name == name } }
    func children(_ name: String) -> [S3XMLElement] { children.filter { $0.name == name } }
    /// Text of the first child with that name, trimmed of surrounding whitespace.
    func value(_ name: String) -> String? {
        child(name).map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}

enum S3XML {
    /// Parses a document; nil when it is not well-formed XML (or empty).
    static func parse(_ data: Data) -> S3XMLElement? {
        // S3 may send whitespace before the document (CompleteMultipartUpload keeps the
        // connection alive that way), which XMLParser would reject.
        guard let start = data.firstIndex(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) else {
            return nil
        }
        let parser = XMLParser(data: data[start...])
        let builder = TreeBuilder()
        parser.delegate = builder
        parser.shouldProcessNamespaces = false
        parser.shouldResolveExternalEntities = false
        guard parser.parse(), let root = builder.root else { return nil }
        return root
    }

    private final class TreeBuilder: NSObject, XMLParserDelegate {
        var stack: [S3XMLElement] = []
        var root: S3XMLElement?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            // Drop a namespace prefix, if any (`s3:Key` → `Key`).
            let local = elementName.split(separator: ":").last.map(String.init) ?? elementName
            stack.append(S3XMLElement(name: local))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += String(decoding: CDATABlock, as: UTF8.self)
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?) {
            guard let done = stack.popLast() else { return }
            if stack.isEmpty { root = done } else { stack[stack.count - 1].children.append(done) }
        }
    }

    // MARK: - Documents

    /// `<Error><Code>…</Code><Message>…</Message>…</Error>`
    struct ErrorDocument: Equatable {
        var code: String
        var message: String?
        var requestID: String?
    }

    /// The S3 error in a body, if the body is an `<Error>` document.
    static func error(_ data: Data) -> ErrorDocument? {
        guard let root = parse(data), root.name == "Error" else { return nil }
        return ErrorDocument(code: root.value("Code") ?? "UnknownError", message: root.value("Message"),
                             requestID: root.value("RequestId"))
    }

    /// `<InitiateMultipartUploadResult>…<UploadId>…</UploadId></InitiateMultipartUploadResult>`
    static func uploadID(_ data: Data) -> String? {
        guard let root = parse(data), root.name == "InitiateMultipartUploadResult",
              let id = root.value("UploadId"), !id.isEmpty else { return nil }
        return id
    }

    /// `<CompleteMultipartUploadResult>` (moto says `...Response`; other S3-compatible servers
    /// vary too, so any well-formed document that is not an `<Error>` counts): the final
    /// object's ETag (quotes kept). Nil when the body is not XML or is an `<Error>`.
    static func completeResult(_ data: Data) -> (etag: String?, key: String?)? {
        guard let root = parse(data), root.name != "Error" else { return nil }
        return (root.value("ETag"), root.value("Key"))
    }

    struct ListPage {
        var objects: [(key: String, size: Int64)]
        var isTruncated: Bool
        var nextContinuationToken: String?
    }

    /// `<ListBucketResult>` of ListObjectsV2. With `urlEncoded` (the request asked for
    /// `encoding-type=url`), keys are percent-decoded.
    static func listPage(_ data: Data, urlEncoded: Bool) -> ListPage? {
        guard let root = parse(data), root.name == "ListBucketResult" else { return nil }
        var objects: [(key: String, size: Int64)] = []
        for item in root.children("Contents") {
            // Keys are not trimmed: leading or trailing spaces are legal in a key.
            guard var key = item.child("Key")?.text, let size = item.value("Size").flatMap({ Int64($0) }) else {
                return nil
            }
            if urlEncoded { key = key.removingPercentEncoding ?? key }
            objects.append((key, size))
        }
        let truncated = root.value("IsTruncated")?.lowercased() == "true"
        let token = root.value("NextContinuationToken").flatMap { $0.isEmpty ? nil : $0 }
        return ListPage(objects: objects, isTruncated: truncated, nextContinuationToken: token)
    }

    /// `<ListMultipartUploadsResult>`: the uploads in progress, and the markers of the next page.
    struct UploadsPage {
        var uploads: [S3MultipartUpload]
        var isTruncated: Bool
        var nextKeyMarker: String?
        var nextUploadIDMarker: String?
    }

    static func uploadsPage(_ data: Data) -> UploadsPage? {
        guard let root = parse(data), root.name == "ListMultipartUploadsResult" else { return nil }
        var uploads: [S3MultipartUpload] = []
        for item in root.children("Upload") {
            guard let key = item.child("Key")?.text, let id = item.value("UploadId") else { return nil }
            uploads.append(S3MultipartUpload(key: key, uploadID: id, initiated: item.value("Initiated").flatMap(timestamp)))
        }
        return UploadsPage(uploads: uploads, isTruncated: root.value("IsTruncated")?.lowercased() == "true",
                           nextKeyMarker: root.value("NextKeyMarker").flatMap { $0.isEmpty ? nil : $0 },
                           nextUploadIDMarker: root.value("NextUploadIdMarker").flatMap { $0.isEmpty ? nil : $0 })
    }

    /// An S3 timestamp (`2026-12-01T22:44:57.000Z`, ISO 8601 with or without fractions).
    static func timestamp(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    // MARK: - Writing

    /// Escapes text for an XML element body.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(ch)
            }
        }
        return out
    }

    /// The CompleteMultipartUpload request body.
    static func completeRequest(parts: [(number: Int, etag: String)]) -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(escape(part.etag))</ETag></Part>"
        }
        return xml + "</CompleteMultipartUpload>"
    }

    static func createBucketRequest(region: String) -> String? {
        guard region != "us-east-1" else { return nil }
        return "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            + "<LocationConstraint>\(escape(region))</LocationConstraint></CreateBucketConfiguration>"
    }
}

extension S3XML {
    /// `<ListVersionsResult>`: versions and delete markers in the order S3 gives them (by key,
    /// newest first within a key), and the markers of the next page.
    struct VersionsPage {
        var versions: [ObjectVersion]
        var isTruncated: Bool
        var nextKeyMarker: String?
        var nextVersionIDMarker: String?
    }

    static func versionsPage(_ data: Data, urlEncoded: Bool) -> VersionsPage? {
        guard let root = parse(data), root.name == "ListVersionsResult" else { return nil }
        var versions: [ObjectVersion] = []
        for item in root.children where item.name == "Version" || item.name == "DeleteMarker" {
            guard var key = item.child("Key")?.text, let id = item.value("VersionId"),
                  let modified = item.value("LastModified").flatMap(timestamp) else { return nil }
            if urlEncoded { key = key.removingPercentEncoding ?? key }
            versions.append(ObjectVersion(key: key, versionID: id, size: item.value("Size").flatMap { Int64($0) } ?? 0,
                                          lastModified: modified, isDeleteMarker: item.name == "DeleteMarker",
                                          isLatest: item.value("IsLatest")?.lowercased() == "true"))
        }
        return VersionsPage(versions: versions, isTruncated: root.value("IsTruncated")?.lowercased() == "true",
                            nextKeyMarker: root.value("NextKeyMarker").flatMap { $0.isEmpty ? nil : $0 },
                            nextVersionIDMarker: root.value("NextVersionIdMarker").flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The PutObjectRetention request body.
    static func retentionRequest(_ retention: ObjectRetention) -> String {
        "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>\(retention.mode.rawValue)</Mode>"
            + "<RetainUntilDate>\(ISO8601.string(retention.retainUntil))</RetainUntilDate></Retention>"
    }
}

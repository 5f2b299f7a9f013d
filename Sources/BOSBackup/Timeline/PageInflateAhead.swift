import Foundation

/// The leaves `timeline --key` is about to read, inflated and checked against their
/// index's SHA-256 on the other core (`WorkAhead`): it reads one page of nearly every
/// commit (on a day's archive, every order inserted before the asked one rewrote the
/// row's leaf). The walk reads the members itself (`StoredPages` is the walk's alone)
/// when a segment starts, and takes each page when it reaches it; a page it takes was
/// checked there, and a damaged one throws, as the walk's own read would.
final class PageInflateAhead {
    private let work = WorkAhead<Place, [UInt8]>(label: "bosbackup.timeline.inflate-ahead")
    private let pageSize: Int

    private struct Place: Hashable {
        var segment: Int32
        var offset: Int64
        init(_ page: StoredPage) { (segment, offset) = (page.segment, page.offset) }
    }

    init(pageSize: Int) { self.pageSize = pageSize }

    /// Inflates `pages` (page `number` each, their members read by `stored`), in order;
    /// those of the last batch not taken are dropped.
    func prefetch(_ pages: [StoredPage], number: UInt32, from stored: StoredPages) {
        // Its own decompressor, used on the queue only; no verifier: each page is checked there.
        let inflater = PageInflater(pageSize: pageSize)
        work.start(pages.map { place in
            let member = Result { try stored.member(place) }
            return (Place(place), { try inflater.bytes(.member(try member.get()), page: number) })
        })
    }

    /// The page at `place`, inflated and checked, if it was prefetched; nil: the walk inflates it itself.
    func take(_ place: StoredPage) throws -> [UInt8]? { try work.take(Place(place)) }

    func stop() { work.stop() }
}

/// A set of page numbers as one bit each: choosing a day's pages asks "decided
/// already?" for every page every commit wrote (17 M on a 1.22 M-commit archive),
/// a bit look-up instead of a hash. Grows to the highest page inserted (a 1.5 GB
/// database of 4 KiB pages: 48 KiB); callers insert only pages within the
/// database's size.
struct PageNumberSet {
    private var words: [UInt64] = []

    /// Inserts `page`; true when it was not there yet.
    mutating func insert(_ page: UInt32) -> Bool {
        let (word, bit) = (Int(page >> 6), UInt64(1) << UInt64(page & 63))
        if word >= words.count { words.append(contentsOf: repeatElement(0, count: max(word + 1 - words.count, words.count))) }
        if words[word] & bit != 0 { return false }
        words[word] |= bit
        return true
    }

    func contains(_ page: UInt32) -> Bool {
        let word = Int(page >> 6)
        return word < words.count && words[word] & (UInt64(1) << UInt64(page & 63)) != 0
    }
}

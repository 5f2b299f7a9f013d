import Foundation
import XCTest

/// The test harness's own cleanup: a full /tmp failed a CI run, because every test's folder
/// outlived its test (XCTest keeps test case objects, and their `dir`, to the end).
final class TestFoldersTests: XCTestCase {
    /// A folder made during a test is gone when the test finishes, though something still holds
    /// it; one kept for the bundle (the fixture cache) stays until the bundle finishes.
    func testATestsFolderIsRemovedWhenItFinishesWhileStillHeld() throws {
        let folders = TestFolders()  // not registered: this test calls the hooks XCTest would
        folders.testCaseDidFinish(self)
        folders.testCaseWillStart(self)
        let held = TempDir(removedBy: folders)
        let cache = held.path + "-cache"                    // as the fixture cache is kept
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        folders.adopt(cache, untilTheBundleEnds: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: held.file("a")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: held.file("a")))

        folders.testCaseDidFinish(self)
        XCTAssertFalse(FileManager.default.fileExists(atPath: held.path), "the test's folder outlived it")
        XCTAssertTrue(FileManager.default.fileExists(atPath: cache), "the bundle's folder went with a test")
        folders.testBundleDidFinish(Bundle.main)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache))
    }

    /// Folders made between tests (no test running) are the bundle's, not the next test's.
    func testAFolderMadeBetweenTestsStaysUntilTheBundleEnds() {
        let folders = TestFolders()
        folders.testCaseDidFinish(self)
        let between = TempDir(removedBy: folders)
        folders.testCaseWillStart(self)
        folders.testCaseDidFinish(self)
        XCTAssertTrue(FileManager.default.fileExists(atPath: between.path))
        folders.testBundleDidFinish(Bundle.main)
        XCTAssertFalse(FileManager.default.fileExists(atPath: between.path))
    }
}

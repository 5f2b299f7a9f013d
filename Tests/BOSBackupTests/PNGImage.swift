import CZlib
import Foundation

/// Just enough of a PNG decoder (8-bit RGB/RGBA, non-interlaced) to look at
/// the pixels of a screenshot in a test.
struct PNGImage {
    let width: Int, height: Int
    /// RGB triples, row by row.
    let pixels: [UInt8]

    enum Failure: Error { case notPNG, unsupported(String), inflate(Int32) }

    init(path: String) throws {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard data.count > 8, data[0..<8].elementsEqual([137, 80, 78, 71, 13, 10, 26, 10]) else { throw Failure.notPNG }
        var offset = 8, w = 0, h = 0, colorType = 0
        var idat: [UInt8] = []
        func u32(_ at: Int) -> Int { Int(data[at]) << 24 | Int(data[at + 1]) << 16 | Int(data[at + 2]) << 8 | Int(data[at + 3]) }
        while offset + 8 <= data.count {
            let length = u32(offset), type = String(decoding: data[offset + 4..<offset + 8], as: UTF8.self)
            let body = offset + 8
            if type == "IHDR" {
                w = u32(body); h = u32(body + 4); colorType = Int(data[body + 9])
                guard data[body + 8] == 8, data[body + 12] == 0 else { throw Failure.unsupported("bit depth or interlace") }
            } else if type == "IDAT" {
                idat += data[body..<body + length]
            }
            offset = body + length + 4
        }
        let channels: Int
        switch colorType { case 2: channels = 3; case 6: channels = 4; default: throw Failure.unsupported("color type \(colorType)") }
        let stride = w * channels
        var raw = [UInt8](repeating: 0, count: (stride + 1) * h)
        var destLength = uLongf(raw.count)
        let rc = raw.withUnsafeMutableBufferPointer { out in idat.withUnsafeBufferPointer { uncompress(out.baseAddress, &destLength, $0.baseAddress, uLong($0.count)) } }
        guard rc == Z_OK else { throw Failure.inflate(rc) }
        var image = [UInt8](repeating: 0, count: stride * h)
        for y in 0..<h {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let value = raw[y * (stride + 1) + 1 + x]
                let a = x >= channels ? Int(image[y * stride + x - channels]) : 0
                let b = y > 0 ? Int(image[(y - 1) * stride + x]) : 0
                let c = (x >= channels && y > 0) ? Int(image[(y - 1) * stride + x - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw Failure.unsupported("filter \(filter)")
                }
                image[y * stride + x] = UInt8((Int(value) + predictor) & 0xff)
            }
        }
        width = w; height = h
        pixels = (0..<(w * h)).flatMap { i in image[i * channels..<i * channels + 3] }
    }

    /// How many pixels have exactly this colour ("#2f6fb0").
    func count(of hex: String) -> Int {
        let v = Int(hex.dropFirst(), radix: 16)!
        let rgb = [UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
        return stride(from: 0, to: pixels.count, by: 3).filter { pixels[$0] == rgb[0] && pixels[$0 + 1] == rgb[1] && pixels[$0 + 2] == rgb[2] }.count
    }
}

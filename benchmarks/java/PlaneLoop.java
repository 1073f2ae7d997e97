// Bio-Formats' own loop: every plane of series 0 through openBytes into one reused buffer,
// timed inside Java (benchmarks/bridges.py compiles and runs it; no bridge involved).
import loci.formats.ImageReader;

public class PlaneLoop {
    public static void main(String[] args) throws Exception {
        String path = args[0];
        int repeats = Integer.parseInt(args[1]);
        ImageReader reader = new ImageReader();
        reader.setId(path);
        int planes = reader.getImageCount();
        byte[] buffer = new byte[reader.getSizeX() * reader.getSizeY()
            * (loci.formats.FormatTools.getBytesPerPixel(reader.getPixelType()))
            * reader.getRGBChannelCount()];
        long bytes = (long) buffer.length * planes;
        for (int r = -1; r < repeats; r++) {  // r = -1: warm-up pass, not printed
            long start = System.nanoTime();
            for (int i = 0; i < planes; i++) {
                reader.openBytes(i, buffer);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            if (r >= 0) {
                System.out.println(bytes + " " + seconds);
            }
        }
        reader.close();
    }
}

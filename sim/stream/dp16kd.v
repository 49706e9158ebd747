// Behavioural DP16KD (ECP5 true dual-port block RAM) for simulating
// BlockRAM's ECP5 build under Icarus; only what BlockRAM uses: port A
// writes, port B reads through its output register.
// Ref: Lattice FPGA-TN-02204 (ECP5 Memory Usage Guide), DP16KD: data
// widths 1/2/4/9/18 use address bits [13:0]/[13:1]/[13:2]/[13:3]/[13:4]
// (x18: ADA[1:0] are the write byte enables); the array read is registered
// by CE; with REGMODE "OUTREG" the output register loads on OCE.  Width 36
// on both ports is the pseudo-dual-port mode (PDPW16KD): 512 words, DIA/DOA
// the low and DIB/DOB the high 18 bits, ADA[3:0] four 9-bit byte enables,
// addresses [13:5], read on port B's clock, both output registers on.
// Yosys' cells_sim_ecp5.v has DP16KD as a blackbox only, hence this model.
module DP16KD #(
    parameter DATA_WIDTH_A = 18, parameter DATA_WIDTH_B = 18,
    parameter REGMODE_A = "NOREG", parameter REGMODE_B = "NOREG",
    parameter RESETMODE = "SYNC", parameter ASYNC_RESET_RELEASE = "SYNC",
    parameter CSDECODE_A = "0b000", parameter CSDECODE_B = "0b000",
    parameter WRITEMODE_A = "NORMAL", parameter WRITEMODE_B = "NORMAL",
    parameter GSR = "ENABLED"
) (
    input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
    input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    localparam W = DATA_WIDTH_A;
    localparam S = W == 36 ? 5 : W == 18 ? 4 : W == 9 ? 3 : W == 4 ? 2 : W == 2 ? 1 : 0;
    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [35:0] di = {dib, dia};
    reg [35:0] mem [0:(1 << (14 - S)) - 1];
    reg [35:0] latch_b = 0, out_b = 0;
    wire [35:0] dob = REGMODE_B == "OUTREG" ? out_b : latch_b;
    // x36: the low half on DOA, the high half on DOB.
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = W == 36 ? dob[35:18] : dob[17:0];
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = W == 36 ? dob[17:0] : 18'b0;
    initial begin
        // Only the configuration PacketFIFO instantiates is modelled.
        if (DATA_WIDTH_A != DATA_WIDTH_B || (W != 1 && W != 2 && W != 4 && W != 9 && W != 18 && W != 36))
            $fatal(1, "DP16KD model: widths %0d/%0d not modelled", DATA_WIDTH_A, DATA_WIDTH_B);
        if (REGMODE_A != (W == 36 ? "OUTREG" : "NOREG") || REGMODE_B != "OUTREG")
            $fatal(1, "DP16KD model: REGMODE B OUTREG (and A too at x36, else NOREG) expected");
    end
    always @(posedge CLKA)
        if (CEA && WEA && !RSTA) begin
            if (W == 36) begin
                if (ada[0]) mem[ada[13:S]][8:0] <= di[8:0];
                if (ada[1]) mem[ada[13:S]][17:9] <= di[17:9];
                if (ada[2]) mem[ada[13:S]][26:18] <= di[26:18];
                if (ada[3]) mem[ada[13:S]][35:27] <= di[35:27];
            end else if (W == 18) begin
                if (ada[0]) mem[ada[13:S]][8:0] <= dia[8:0];
                if (ada[1]) mem[ada[13:S]][17:9] <= dia[17:9];
            end else
                mem[ada[13:S]] <= dia & ((18'b1 << W) - 1);
        end
    always @(posedge CLKB) begin
        if (WEB) $fatal(1, "DP16KD model: port B writes are not modelled");
        if (OCEB) out_b <= latch_b;
        if (CEB) latch_b <= mem[adb[13:S]];
    end
endmodule

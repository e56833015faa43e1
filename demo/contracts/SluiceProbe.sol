// SPDX-License-Identifier: MIT
// The contract the tests of sluice's EVM SQL functions run against
// (tests/python/test_evm_functions.py): return values, events, reverts and calldata
// in the ABI shapes those functions read and write, all encoded by solc, so the
// tests compare sluice's decoding and encoding with an independent encoder.
// Not deployed by the demo traffic.
pragma solidity ^0.8.24;

contract SluiceProbe {
    struct Post {
        uint256 id;
        string[] tags;
        address author;
    }

    struct Triple {
        int256 a;
        int8 b;
        string[] c;
    }

    // Uniswap V2's reserve layout: getReserves() returns (uint112, uint112, uint32).
    uint112 private reserve0;
    uint112 private reserve1;
    uint32 private blockTimestampLast;

    event Sync(uint112 reserve0, uint112 reserve1);
    event Posted(address indexed author, string indexed topic, int256 score, int8 mood,
                 string[] tags, Post post, bytes note, uint256 big);
    event Extremes(int256 indexed low, uint128 u128, int128 i128, uint256 max, int256 min,
                   bytes32 tag, bool flag, uint24 odd, bytes3[2] pair);

    function setReserves(uint112 r0, uint112 r1) external {
        reserve0 = r0;
        reserve1 = r1;
        blockTimestampLast = uint32(block.timestamp);
        emit Sync(r0, r1);
    }

    function getReserves() external view returns (uint112, uint112, uint32) {
        return (reserve0, reserve1, blockTimestampLast);
    }

    function post(string calldata topic, int256 score, int8 mood, string[] calldata tags,
                  Post calldata p, bytes calldata note) external {
        emit Posted(msg.sender, topic, score, mood, tags, p, note, type(uint256).max);
    }

    function extremes() external {
        bytes3[2] memory pair = [bytes3("abc"), bytes3("def")];
        emit Extremes(-42, type(uint128).max, type(int128).min, type(uint256).max,
                      type(int256).min, keccak256("sluice"), true, 0xabcdef, pair);
    }

    function fail(string calldata reason) external pure {
        revert(reason);
    }

    function divide(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;
    }

    // One struct returned: the return data is abi.encode(Triple).
    function triple() external pure returns (Triple memory) {
        string[] memory c = new string[](3);
        c[0] = "str1";
        c[1] = "str2";
        c[2] = "str3";
        return Triple(-1, -2, c);
    }

    function encodeTriple(int256 a, int8 b, string[] calldata c) external pure returns (bytes memory) {
        return abi.encode(Triple(a, b, c));
    }

    function echo(Post calldata p) external pure returns (Post memory) {
        return p;
    }

    // solc's calldata for post(…) with the arguments the tests use.
    function postCalldata() external view returns (bytes memory) {
        string[] memory tags = new string[](2);
        tags[0] = "abi";
        tags[1] = "sql";
        string[] memory postTags = new string[](1);
        postTags[0] = unicode"é€ unicode";
        return abi.encodeCall(this.post, ("topic", -5, -128, tags, Post(7, postTags, address(this)),
                                          hex"00ff10"));
    }
}
